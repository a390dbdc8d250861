"""`souk replay` against small HTTP servers that serve a service's rebuild routes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from souk.cli import app
from souk.state import Health, InstanceRecord, InstanceState, SoukState, write_state
from souk.testing import free_port

PROBLEMS = "https://souk.dev/problems/"
STARTED = "2026-11-25T10:00:00+00:00"


@dataclass
class RebuildingService:
    """A service's rebuild routes: a rebuild runs for ``polls`` status requests, then ends
    ``ending`` ("done" or "failed"); with ``archive`` False, no such route (404), and with
    ``busy`` True a rebuild is running already (409)."""

    archive: bool = True
    busy: bool = False
    ending: str = "done"
    polls: int = 2
    requests: list[str] = field(default_factory=list)

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        self.requests.append(f"{method} {path}")
        if not self.archive or path != "/internal/rebuild":
            return 404, problem("not-found")
        if method == "POST":
            if self.busy:
                return 409, problem("rebuild-running", "a rebuild of the read model is running")
            return 202, status("running", 0, 0)
        gets = sum(request.startswith("GET") for request in self.requests)
        if gets < self.polls:
            return 200, status("running", 40 * gets, 120)
        if self.ending == "failed":
            return 200, status("failed", 80, 120, error="MalformedEvent: OrderPlaced payload")
        return 200, status("done", 120, 120, orders=31, products=72)


def status(state: str, done: int, total: int, **fields: Any) -> dict[str, Any]:
    return {
        "state": state,
        "started_at": STARTED,
        "done": done,
        "total": total,
        "seconds": 0.42,
        **fields,
    }


def problem(kind: str, detail: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": PROBLEMS + kind, "title": kind, "status": 0}
    return {**body, "detail": detail} if detail else body


def serve(behaviour: RebuildingService) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.reply("GET")

        def do_POST(self) -> None:
            self.reply("POST")

        def reply(self, method: str) -> None:
            code, body = behaviour.answer(method, self.path)
            data = json.dumps(body).encode()
            self.send_response(code)
            kind = "application/json" if code < 400 else "application/problem+json"
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
    history: RebuildingService
    gateway: RebuildingService


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningSystem]:
    """A state.json as `souk up` writes it, naming the servers above and a dead instance."""
    # `souk replay` reads state.json only while its orchestrator lives, and checks that pid
    # runs `souk up`: a sleeping process with that argv stands in for it.
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", "souk", "up"]
    )
    history, gateway = RebuildingService(), RebuildingService(archive=False)
    servers = [serve(history), serve(gateway)]
    history_port, gateway_port = (server.server_address[1] for server in servers)
    instances = [
        instance("gateway", 1, gateway_port),
        # The first order-history instance is ready on paper but gone: the second one answers.
        instance("order-history", 1, free_port()),
        instance("order-history", 2, history_port),
        instance("catalog", 1, history_port, InstanceState.RESTARTING),
    ]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    state = SoukState(
        pid=orchestrator.pid,
        started_at=STARTED,
        topology=str(tmp_path / "souk.yaml"),
        data_dir=str(data_dir),
        instances=instances,
    )
    write_state(data_dir, state)
    try:
        yield RunningSystem(data_dir, history, gateway)
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


def replay(system: RunningSystem, service: str) -> Result:
    return CliRunner().invoke(app, ["replay", service, "--data-dir", str(system.data_dir)])


def test_a_replay_starts_a_rebuild_follows_it_to_the_end_and_sums_it_up(
    running: RunningSystem,
) -> None:
    result = replay(running, "order-history")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "order-history rebuilt from 120 archived events: 31 orders, 72 products (0.4 s)"
    )
    assert running.history.requests == [
        "POST /internal/rebuild",
        "GET /internal/rebuild",
        "GET /internal/rebuild",
    ]


def test_a_failed_rebuild_exits_1_with_the_services_reason(running: RunningSystem) -> None:
    running.history.ending = "failed"

    result = replay(running, "order-history")

    assert result.exit_code == 1
    assert "order-history: the rebuild failed: MalformedEvent: OrderPlaced payload" in (
        result.stderr
    )
    assert "rebuilt" not in result.stdout


def test_a_rebuild_already_running_is_not_started_twice(running: RunningSystem) -> None:
    running.history.busy = True

    result = replay(running, "order-history")

    assert result.exit_code == 1
    assert "order-history: a rebuild is running already" in result.stderr
    assert running.history.requests == ["POST /internal/rebuild"]


def test_a_service_without_a_read_model_has_nothing_to_replay(running: RunningSystem) -> None:
    result = replay(running, "gateway")

    assert result.exit_code == 1
    assert "gateway keeps no event archive to replay" in result.stderr


@pytest.mark.parametrize(
    ("service", "message"),
    [("nowhere", "no service 'nowhere'"), ("catalog", "catalog: no instance is ready")],
)
def test_an_unknown_service_or_one_with_no_ready_instance_is_an_error(
    running: RunningSystem, service: str, message: str
) -> None:
    result = replay(running, service)

    assert result.exit_code == 1
    assert message in result.stderr


def test_the_help_says_what_a_replay_relies_on() -> None:
    result = CliRunner().invoke(app, ["replay", "--help"])

    words = " ".join(result.stdout.split())
    assert result.exit_code == 0
    assert "event archive" in words
    assert "not from the broker" in words
