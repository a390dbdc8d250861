"""`souk` refusing to start, and the commands that find nothing running."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from souk.plan import free_port

RunSouk = Callable[..., Any]
FakeSpec = Callable[..., dict[str, Any]]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port held by a listening socket for the duration of the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def nothing_started(data_dir: Path) -> bool:
    return not (data_dir / "state.json").exists() and not (data_dir / "logs").exists()


def test_help_lists_the_commands(run_souk: RunSouk) -> None:
    result = run_souk("--help")
    assert result.returncode == 0
    for command in ("up", "down", "status", "logs", "dlq"):
        assert command in result.stdout


def test_invalid_topology_is_refused_with_file_and_line(run_souk: RunSouk, tmp_path: Path) -> None:
    (tmp_path / "souk.yaml").write_text(
        "services:\n  gateway:\n    upstreams: [catalog]\n  catalog:\n    replicas: 0\n",
        encoding="utf-8",
    )
    result = run_souk("up", "--data-dir", "data")
    assert result.returncode == 1
    assert (
        "souk.yaml:5: services.catalog.replicas: Input should be greater than or equal to 1"
        in result.stderr
    )
    assert not (tmp_path / "data").exists()


def test_taken_port_is_refused_and_nothing_starts(
    run_souk: RunSouk, tmp_path: Path, fake: FakeSpec, listening: int
) -> None:
    topology = {
        "services": {"catalog": fake("catalog"), "gateway": fake("gateway", port=listening)}
    }
    (tmp_path / "topo.yaml").write_text(json.dumps(topology), encoding="utf-8")
    result = run_souk("up", "--topology", "topo.yaml", "--data-dir", "data")
    assert result.returncode == 1
    assert f"port {listening} (gateway) is already in use" in result.stderr
    assert nothing_started(tmp_path / "data")


def test_unreachable_broker_is_refused_and_nothing_starts(
    run_souk: RunSouk, tmp_path: Path, fake: FakeSpec
) -> None:
    port = free_port()  # nobody listens there
    topology = {
        "services": {"catalog": fake("catalog")},
        "broker": {"kind": "rabbitmq", "url": f"amqp://guest:guest@127.0.0.1:{port}/"},
    }
    (tmp_path / "topo.yaml").write_text(yaml.safe_dump(topology), encoding="utf-8")
    result = run_souk("up", "--topology", "topo.yaml", "--data-dir", "data")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"souk: the rabbitmq broker at 127.0.0.1:{port} does not accept connections "
        "(Connection refused); start it, or change `broker:` at topo.yaml:"
    )
    assert result.stderr.rstrip().endswith("; nothing was started")
    assert nothing_started(tmp_path / "data")


def test_default_topology_is_used_without_a_file(run_souk: RunSouk, tmp_path: Path) -> None:
    # Holding 8080 for the whole run makes the default topology's gateway refuse to start, so
    # this test never runs the real services. If another process holds 8080 it may let go at
    # any moment, so then the test cannot be run safely.
    with socket.socket() as holder:
        try:
            holder.bind(("127.0.0.1", 8080))
        except OSError as exc:
            pytest.skip(f"cannot hold port 8080: {exc}")
        holder.listen()
        result = run_souk("up", "--data-dir", "data")
    assert result.returncode == 1
    assert "port 8080 (gateway) is already in use" in result.stderr
    assert nothing_started(tmp_path / "data")


def test_missing_topology_option_file(run_souk: RunSouk) -> None:
    result = run_souk("up", "--topology", "nowhere.yaml")
    assert result.returncode == 1
    assert "nowhere.yaml: no such topology file" in result.stderr


def test_status_and_down_when_nothing_runs(run_souk: RunSouk, tmp_path: Path) -> None:
    status = run_souk("status", "--json", "--data-dir", "data")
    assert status.returncode == 1
    assert "souk is not running" in status.stderr
    down = run_souk("down", "--data-dir", "data")
    assert down.returncode == 0
    assert "nothing to stop" in down.stdout


def test_stale_state_file_is_not_running(run_souk: RunSouk, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    stale = {
        "pid": 2**22 + 12345,  # above the default pid_max: no such process
        "started_at": "2025-01-01T00:00:00+00:00",
        "topology": "souk.yaml",
        "data_dir": str(data),
        "instances": [],
    }
    (data / "state.json").write_text(json.dumps(stale), encoding="utf-8")
    result = run_souk("status", "--data-dir", "data")
    assert result.returncode == 1
    assert "souk is not running" in result.stderr


def test_chaos_lists_its_scenarios(run_souk: RunSouk) -> None:
    result = run_souk("chaos", "--list")
    assert result.returncode == 0
    for scenario in ("freeze-primary-provider", "kill-gateway", "kill-orders-twice"):
        assert scenario in result.stdout


def test_chaos_without_a_running_system_fails_and_says_so(
    run_souk: RunSouk, tmp_path: Path
) -> None:
    result = run_souk("chaos", "kill-gateway", "--data-dir", "nothing-here")
    assert result.returncode == 1
    assert "no `souk up` is running" in result.stderr
    assert nothing_started(tmp_path / "nothing-here")
