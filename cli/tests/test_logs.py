"""`souk logs`: which files, the instance prefix, readable JSON lines, -n, --raw, follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from souk.cli import app
from souk.logs import LogPrinter, follow_logs, render_line


def json_line(event: str, **fields: object) -> str:
    record = {"time": "2025-01-02T03:04:05.678Z", "level": "info", "event": event, **fields}
    return json.dumps(record)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "catalog-1.log").write_text(
        json_line("listening", port=9001) + "\n" + json_line("request", path="/a b") + "\n",
        encoding="utf-8",
    )
    (logs / "catalog-2.log").write_text("plain startup text\n", encoding="utf-8")
    (logs / "catalog-10.log").write_text(json_line("ten") + "\n", encoding="utf-8")
    (logs / "gateway-1.log").write_text(json_line("proxying", level="warning") + "\n", "utf-8")
    return tmp_path / "data"


def souk_logs(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["logs", *args])
    return result.exit_code, result.output.splitlines()


def test_all_instances_prefixed_and_rendered(data_dir: Path) -> None:
    code, lines = souk_logs("--data-dir", str(data_dir))
    assert code == 0
    assert lines == [
        "catalog-1  | 2025-01-02T03:04:05.678Z INFO  listening port=9001",
        'catalog-1  | 2025-01-02T03:04:05.678Z INFO  request path="/a b"',
        "catalog-2  | plain startup text",
        "catalog-10 | 2025-01-02T03:04:05.678Z INFO  ten",
        "gateway-1  | 2025-01-02T03:04:05.678Z WARNING proxying",
    ]


def test_one_service_one_instance_and_last_lines(data_dir: Path) -> None:
    _, lines = souk_logs("catalog", "-n", "1", "--data-dir", str(data_dir))
    assert [line.split(" | ")[0].strip() for line in lines] == [
        "catalog-1",
        "catalog-2",
        "catalog-10",
    ]
    assert "request" in lines[0]
    _, lines = souk_logs("catalog-2", "--data-dir", str(data_dir))
    assert lines == ["catalog-2 | plain startup text"]


def test_raw_prints_json_as_is(data_dir: Path) -> None:
    _, lines = souk_logs("gateway", "--raw", "--data-dir", str(data_dir))
    assert lines == [f"gateway-1 | {json_line('proxying', level='warning')}"]


def test_unknown_target_is_an_error(data_dir: Path) -> None:
    code, lines = souk_logs("orders", "--data-dir", str(data_dir))
    assert code == 1
    assert "no logs for 'orders'" in lines[0]
    assert "catalog-1" in lines[0]


def test_no_logs_at_all(tmp_path: Path) -> None:
    code, lines = souk_logs("--data-dir", str(tmp_path / "nothing"))
    assert code == 1
    assert "no logs in" in lines[0]


def test_render_keeps_what_is_not_a_json_object() -> None:
    assert render_line("[1, 2]") == "[1, 2]"
    assert render_line("{not json") == "{not json"
    assert render_line('{"msg": "hi", "levelname": "error", "n": [1]}') == "ERROR hi n=[1]"


def test_follow_prints_appended_lines_and_new_instances(data_dir: Path) -> None:
    logs = data_dir / "logs"
    printed: list[str] = []
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            with (logs / "catalog-1.log").open("a", encoding="utf-8") as handle:
                handle.write(json_line("later") + "\nhalf a li")
            (logs / "catalog-3.log").write_text("new instance\n", encoding="utf-8")
        if calls == 3:
            with (logs / "catalog-1.log").open("a", encoding="utf-8") as handle:
                handle.write("ne\n")
        return calls > 4

    follow_logs(
        data_dir, "catalog", LogPrinter(write=printed.append), interval=0, should_stop=should_stop
    )
    assert [line.split(" | ", 1)[1] for line in printed] == [
        "2025-01-02T03:04:05.678Z INFO  later",
        "new instance",
        "half a line",
    ]
    assert printed[1].startswith("catalog-3")
