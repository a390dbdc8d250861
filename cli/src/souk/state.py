"""The state file `{data_dir}/state.json`, process liveness, and the one-orchestrator lock."""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ValidationError

STATE_FILE = "state.json"
LOCK_FILE = "souk.lock"


class InstanceState(StrEnum):
    """Where an instance is in its life, as the orchestrator sees it."""

    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


class Health(StrEnum):
    """The last probe result: /healthz and /readyz both 200, only /healthz, or neither."""

    OK = "ok"
    UNREADY = "unready"
    DOWN = "down"
    UNKNOWN = "unknown"


class InstanceRecord(BaseModel):
    """One instance as written in the state file."""

    service: str
    instance: str
    pid: int | None
    port: int
    # The address it listens on: 127.0.0.1, or its host's address in a multi-host topology.
    host: str = "127.0.0.1"
    url: str
    state: InstanceState
    health: Health
    restarts: int
    started_at: str | None
    log: str
    grpc_port: int | None = None
    # With the mesh on, the Unix socket the application listens on instead of a TCP port
    # (mode 0600: its sidecar, the supervisor and this user's tools connect); `port` is then
    # its sidecar's inbound (mTLS) port, where the other services reach it.
    socket: str | None = None


class SoukState(BaseModel):
    """The whole state file."""

    pid: int
    started_at: str
    topology: str
    data_dir: str
    instances: list[InstanceRecord]
    stopped_at: str | None = None

    def of_service(self, service: str) -> list[InstanceRecord]:
        """The instances of one service, in index order."""
        return [record for record in self.instances if record.service == service]

    def find(self, instance: str) -> InstanceRecord | None:
        """The instance with this id, if any."""
        return next((record for record in self.instances if record.instance == instance), None)


def now_iso() -> str:
    """The current time as an ISO 8601 string with timezone."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def state_path(data_dir: Path) -> Path:
    """Where the state file of a data dir lives."""
    return data_dir / STATE_FILE


def write_state(data_dir: Path, state: SoukState) -> None:
    """Replace the state file atomically, so readers never see half a file."""
    target = state_path(data_dir)
    temporary = target.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    temporary.write_text(state.model_dump_json(indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)


def read_state(data_dir: Path) -> SoukState | None:
    """The state file's content, or None when there is none or it is unreadable."""
    try:
        return SoukState.model_validate_json(state_path(data_dir).read_bytes())
    except (OSError, ValidationError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no /proc (macOS): signal 0 succeeding is all we can know
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _looks_like_souk(pid: int) -> bool:
    # A pid from an old state file may since have been reused by an unrelated process.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    # `python -m souk up ...` or `.../bin/souk up ...`; not an editor open on souk.yaml.
    argv = cmdline.split(b"\0")
    return b"up" in argv and any(arg == b"souk" or arg.endswith(b"/souk") for arg in argv)


def orchestrator_running(state: SoukState | None) -> bool:
    """Whether the state file belongs to an orchestrator that is still running."""
    if state is None or state.stopped_at is not None:
        return False
    if not pid_alive(state.pid):
        return False
    return not Path("/proc").is_dir() or _looks_like_souk(state.pid)


class AlreadyRunningError(Exception):
    """Another orchestrator already runs on this data dir."""


class OrchestratorLock:
    """An exclusive flock on `{data_dir}/souk.lock`, held for the orchestrator's lifetime.

    The kernel drops it when the process dies, even by SIGKILL, so it never goes stale.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunningError."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunningError(already_running_message(self.path.parent)) from None
        self._file = handle

    def release(self) -> None:
        """Drop the lock."""
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> OrchestratorLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def already_running_message(data_dir: Path) -> str:
    """The refusal shown when a second `souk up` targets a data dir in use."""
    state = read_state(data_dir)
    who = f" (pid {state.pid})" if state is not None and pid_alive(state.pid) else ""
    return f"another `souk up`{who} is already running on {data_dir}"
