"""`souk dlq` against small HTTP servers that serve the services' dead-letter routes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner, Result

from souk.cli import app
from souk.display import format_time
from souk.state import Health, InstanceRecord, InstanceState, SoukState, write_state
from souk.testing import free_port

RunSouk = Callable[..., subprocess.CompletedProcess[str]]
PROBLEMS = "https://souk.dev/problems/"


def letter(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": number,
        "group": "notifications",
        "topic": "orders-placed",
        "key": f"order-{number}",
        "message_id": f"m-{number}",
        "event_type": "OrderPlaced",
        "schema_version": 1,
        "attempts": 5,
        "error": "ValueError: no such customer",
        "buried_at": "2025-05-01T12:00:00+00:00",
        "replayed_at": None,
        **fields,
    }


HEADERS = {"souk-message-id": "m-1", "souk-event-type": "OrderPlaced", "traceparent": "00-ab-cd-01"}
LETTERS = {
    1: {**letter(1), "headers": HEADERS, "payload": '{"order_id": 1, "total": "9.99"}'},
    2: {
        **letter(2, topic="orders-paid", error="KeyError: 'email'\nTraceback (most recent call)"),
        "headers": {"souk-message-id": "m-2"},
        "payload_base64": "AAEC",
    },
}
REPLAYED = letter(3, replayed_at="2025-05-01T13:00:00+00:00")


def summary(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if k not in ("headers", "payload", "payload_base64")}


@dataclass
class DeadLetterService:
    """The three routes of a service with consumers (#1 replays, #2 fails again), or, for a
    service without consumers, 404 on every one of them as the chassis answers."""

    consumers: bool = True
    replays: list[int] = field(default_factory=list)

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if not self.consumers or parts[:2] != ["internal", "dead-letters"]:
            return 404, problem("not-found")
        if method == "GET" and len(parts) == 2:
            items = [summary(detail) for detail in LETTERS.values()]
            if query.get("include_replayed") == ["true"]:
                items.append(REPLAYED)
            return 200, {"items": items}
        number = int(parts[2])
        if method == "GET" and len(parts) == 3 and number in LETTERS:
            return 200, LETTERS[number]
        if method == "POST" and parts[3:] == ["replay"]:
            self.replays.append(number)
            if number == 1:
                return 200, {**summary(LETTERS[1]), "replayed_at": "2025-05-02T08:00:00+00:00"}
            if number == 2:
                return 422, problem("replay-failed", "ValueError: still broken")
        return 404, problem("not-found", f"there is no dead letter {number}")


def problem(kind: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEMS + kind, "title": kind, "status": 0}
    return {**body, "detail": detail} if detail else body


def serve(behaviour: DeadLetterService) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.reply("GET")

        def do_POST(self) -> None:
            self.reply("POST")

        def reply(self, method: str) -> None:
            url = urlsplit(self.path)
            status, body = behaviour.answer(method, url.path, parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(status)
            kind = "application/json" if status < 400 else "application/problem+json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@dataclass
class RunningSystem:
    data_dir: Path
    orders: DeadLetterService


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningSystem]:
    """A state.json as `souk up` writes it, naming the servers above and a dead instance."""
    # `souk dlq` reads state.json only while its orchestrator lives, and checks that pid
    # runs `souk up`: a sleeping process with that argv stands in for it.
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "souk", "up"]
    )
    orders = DeadLetterService()
    servers = [serve(orders), serve(DeadLetterService(consumers=False))]
    orders_port, gateway_port = (server.server_address[1] for server in servers)
    instances = [
        instance("gateway", 1, gateway_port),
        # The first orders instance is ready on paper but gone: the second one answers.
        instance("orders", 1, free_port()),
        instance("orders", 2, orders_port),
        instance("billing", 1, free_port()),
        instance("catalog", 1, orders_port, InstanceState.RESTARTING),
    ]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    state = SoukState(
        pid=orchestrator.pid,
        started_at="2025-05-01T12:00:00+00:00",
        topology=str(tmp_path / "souk.yaml"),
        data_dir=str(data_dir),
        instances=instances,
    )
    write_state(data_dir, state)
    try:
        yield RunningSystem(data_dir, orders)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        orchestrator.kill()
        orchestrator.wait()


def instance(
    service: str, index: int, port: int, state: InstanceState = InstanceState.READY
) -> InstanceRecord:
    return InstanceRecord(
        service=service,
        instance=f"{service}-{index}",
        pid=None,
        port=port,
        url=f"http://127.0.0.1:{port}",
        state=state,
        health=Health.UNKNOWN,
        restarts=0,
        started_at=None,
        log=f"/dev/null/{service}-{index}.log",
    )


def dlq(system: RunningSystem, *args: str) -> Result:
    return CliRunner().invoke(app, ["dlq", *args, "--data-dir", str(system.data_dir)])


def test_list_shows_every_dead_letter_and_reports_what_it_could_not_reach(
    running: RunningSystem,
) -> None:
    result = dlq(running, "list")
    # billing is unreachable and catalog has no ready instance: the listing is incomplete.
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "service" in line)
    for column in ("id", "topic", "event type", "key", "attempts", "error", "buried at"):
        assert column in header
    assert "replayed at" not in header
    first = next(line for line in lines if "order-1" in line)
    for cell in ("orders", "orders-placed", "OrderPlaced", "5", "ValueError: no such customer"):
        assert cell in first
    assert format_time("2025-05-01T12:00:00+00:00") in first
    second = next(line for line in lines if "order-2" in line)
    assert "KeyError: 'email' …" in second  # only the first line of the error
    assert "Traceback" not in result.stdout
    assert "gateway" not in result.stdout  # no consumers: left out silently
    assert "souk: billing: no instance answered" in result.stderr
    assert "souk: catalog: no instance is ready" in result.stderr
    assert "gateway" not in result.stderr


def test_list_one_service_as_json_and_with_the_replayed_ones(running: RunningSystem) -> None:
    result = dlq(running, "list", "orders", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["unreachable"] == {}
    assert [item["id"] for item in listed["items"]] == [1, 2]
    assert listed["items"][0] == {"service": "orders", **summary(LETTERS[1])}

    everything = dlq(running, "list", "orders", "--all")
    assert everything.exit_code == 0, everything.output
    assert "replayed at" in everything.stdout
    replayed = next(line for line in everything.stdout.splitlines() if "order-3" in line)
    assert format_time("2025-05-01T13:00:00+00:00") in replayed


def test_list_says_so_when_there_are_none(running: RunningSystem) -> None:
    result = dlq(running, "list", "gateway")
    assert (result.exit_code, result.stdout) == (0, "no dead letters\n")


def test_list_of_an_unknown_service(running: RunningSystem) -> None:
    result = dlq(running, "list", "shipping")
    assert result.exit_code == 1
    assert "no service 'shipping' in the running system" in result.stderr
    assert "gateway, orders, billing, catalog" in result.stderr


def test_show_prints_headers_and_pretty_payload(running: RunningSystem) -> None:
    result = dlq(running, "show", "orders", "1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("notifications", "m-1", "OrderPlaced (schema version 1)", "no such customer"):
        assert text in out
    assert "traceparent" in out
    assert "00-ab-cd-01" in out
    assert '  "order_id": 1,\n  "total": "9.99"\n}' in out

    binary = dlq(running, "show", "orders", "2", "--json")
    assert binary.exit_code == 0, binary.output
    assert json.loads(binary.stdout) == {
        "service": "orders",
        **LETTERS[2],
        "payload": None,
    }
    assert "(binary, base64) AAEC" in dlq(running, "show", "orders", "2").stdout


def test_show_of_a_missing_letter_and_of_a_service_without_consumers(
    running: RunningSystem,
) -> None:
    missing = dlq(running, "show", "orders", "99")
    assert missing.exit_code == 1
    assert "orders: not-found: there is no dead letter 99" in missing.stderr
    none = dlq(running, "show", "gateway", "1")
    assert none.exit_code == 1
    assert "gateway consumes no messages, so has no dead letters" in none.stderr


def test_replay_one(running: RunningSystem) -> None:
    result = dlq(running, "replay", "orders", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "replayed orders #1 (orders-placed, key order-1)\n"
    assert running.orders.replays == [1]


def test_a_failed_replay_exits_non_zero_with_the_error(running: RunningSystem) -> None:
    result = dlq(running, "replay", "orders", "2")
    assert result.exit_code == 1
    assert (
        result.stderr == "souk: orders #2 not replayed: replay-failed: ValueError: still broken\n"
    )
    assert running.orders.replays == [2]


def test_replay_all_replays_each_in_order_and_reports_the_failures(
    running: RunningSystem,
) -> None:
    result = dlq(running, "replay", "orders", "--all")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "replayed orders #1 (orders-placed, key order-1)",
        "failed   orders #2: replay-failed: ValueError: still broken",
    ]
    assert "souk: 1 of 2 dead letters of orders not replayed" in result.stderr
    assert running.orders.replays == [1, 2]


def test_replay_needs_an_id_or_all(running: RunningSystem) -> None:
    for args in (("orders",), ("orders", "1", "--all")):
        result = dlq(running, "replay", *args)
        assert result.exit_code == 2
        assert "give a dead letter ID or --all" in result.stderr
    assert running.orders.replays == []


def test_replay_on_a_service_without_consumers(running: RunningSystem) -> None:
    result = dlq(running, "replay", "gateway", "--all")
    assert result.exit_code == 1
    assert "gateway consumes no messages" in result.stderr


def test_dlq_when_nothing_runs_says_what_status_says(run_souk: RunSouk) -> None:
    status = run_souk("status", "--data-dir", "data")
    for args in (("list",), ("show", "orders", "1"), ("replay", "orders", "--all")):
        result = run_souk("dlq", *args, "--data-dir", "data")
        assert result.returncode == 1
        assert result.stderr == status.stderr
        assert "souk is not running" in result.stderr
