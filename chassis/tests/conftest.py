"""Shared fixtures for the chassis tests: apps, log capture, migrations, subprocesses."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, FastAPI

from chassis import ServiceSettings, create_app
from chassis.logs import configure_logging

_STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging is process-global; put logging back as it was after every test."""
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved = {
        name: (lg.handlers[:], lg.propagate, lg.disabled)
        for name in _STDLIB_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    saved_structlog = structlog.get_config()
    yield
    root.handlers, level = saved_root
    root.setLevel(level)
    for name, (handlers, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.handlers, lg.propagate, lg.disabled = handlers, propagate, disabled
    structlog.configure(**saved_structlog)


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(service="demo", instance="demo-1", data_dir=tmp_path / "data")


@pytest.fixture
def make_app(settings: ServiceSettings) -> Callable[..., FastAPI]:
    """``make_app(router, ..., settings=..., **create_app_kwargs)`` with a test title."""

    def make(*routers: APIRouter, settings: ServiceSettings = settings, **kwargs: Any) -> FastAPI:
        return create_app(settings, title="demo", routers=routers, **kwargs)

    return make


@pytest.fixture
def running() -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with running(app) as client``: the app's lifespan plus an in-process client."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client,
        ):
            yield client

    return run


class LogCapture:
    """JSON log lines written after ``configure_logging(settings, stream=...)``."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def access(self) -> list[dict[str, Any]]:
        return [
            record
            for record in self.records()
            if record.get("logger") == "chassis.access" and record["event"] == "request"
        ]


@pytest.fixture
def capture_logs() -> Callable[[ServiceSettings], LogCapture]:
    """Point the chassis's logging at a buffer (call it after create_app, which logs to stdout)."""

    def capture(settings: ServiceSettings) -> LogCapture:
        logs = LogCapture()
        configure_logging(settings, stream=logs.stream)
        return logs

    return capture


# --- Alembic migrations written by the tests -------------------------------------------------

_ENV_PY = """\
import sqlalchemy as sa

from chassis.db import run_migrations

run_migrations(sa.MetaData())
"""

_SCRIPT_MAKO = '''\
"""${message}"""
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''

_FIRST_REVISION = '''\
"""Create things, seeded with one row (so a second application would be visible)."""
import os
import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    # Lets concurrency tests hold the migration open long enough for a rival to collide.
    time.sleep(float(os.environ.get("CHASSIS_TEST_MIGRATION_DELAY", "0")))
    op.create_table(
        "things",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.execute("INSERT INTO things (name) VALUES ('seed')")


def downgrade():
    op.drop_table("things")
'''


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A one-revision Alembic directory whose env.py uses chassis.db.run_migrations."""
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(_ENV_PY)
    (directory / "script.py.mako").write_text(_SCRIPT_MAKO)
    (directory / "versions" / "0001_things.py").write_text(_FIRST_REVISION)
    return directory


@pytest.fixture
def add_revision(migrations: Path) -> Callable[[str, str], None]:
    """``add_revision("0002", "0001")`` adds a revision that adds a column to ``things``."""

    def add(revision: str, down_revision: str) -> None:
        body = f'''\
            import sqlalchemy as sa
            from alembic import op

            revision = "{revision}"
            down_revision = "{down_revision}"
            branch_labels = None
            depends_on = None


            def upgrade():
                op.add_column("things", sa.Column("note_{revision}", sa.String(20)))


            def downgrade():
                op.drop_column("things", "note_{revision}")
            '''
        (migrations / "versions" / f"{revision}_more.py").write_text(textwrap.dedent(body))

    return add


# --- Subprocesses and ports ------------------------------------------------------------------


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[Any]]]:
    """Append every Popen here; each one still running is stopped by its pid in teardown."""
    started: list[subprocess.Popen[Any]] = []
    yield started
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def spawn(
    processes: list[subprocess.Popen[Any]], tmp_path: Path
) -> Callable[..., subprocess.Popen[Any]]:
    """Start ``python script args...`` with this environment; output goes to ``<log>``."""

    def start(
        script: Path, *args: str, log: Path | None = None, **popen: Any
    ) -> subprocess.Popen[Any]:
        log = log or tmp_path / f"{script.stem}-{len(processes)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(script), *args],
                stdout=popen.pop("stdout", out),
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **popen.pop("env", {})},
                cwd=popen.pop("cwd", tmp_path),
                **popen,
            )
        processes.append(process)
        return process

    return start


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def wait_for_file() -> Callable[..., None]:
    """``wait_for_file(path, process)``: poll until a marker file appears (or the process dies)."""

    def wait(path: Path, process: subprocess.Popen[Any], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if process.poll() is not None:
                pytest.fail(f"process exited with {process.returncode} before {path.name}")
            if time.monotonic() > deadline:
                pytest.fail(f"{path.name} did not appear within {timeout}s")
            time.sleep(0.02)

    return wait
