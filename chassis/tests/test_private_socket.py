"""An application behind its mesh sidecar (ADR 0016): HTTP and gRPC on Unix sockets only this
OS user reaches (0600 in a 0700 directory), and no TCP port at all."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2

from chassis import ServiceSettings, private_socket

from .test_grpc import echo_server, health_of

_SERVER = """\
import sys
from pathlib import Path

from chassis import ServiceSettings, create_app, run

run(
    lambda settings: create_app(settings, title="private"),
    ServiceSettings(service="private", instance="private-1", uds=Path(sys.argv[1])),
)
"""

NOBODY = 65534


def _listening_tcp_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:[") : -1])
    return found


def _wait_for_socket(path: Path, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
        if path.exists():
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
                    if client.get("http://private/healthz", timeout=1).status_code == 200:
                        return
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    pytest.fail(f"server on {path} did not come up:\n{log.read_text()}")


def _connect_as_nobody(path: Path) -> str:
    """Try to connect to ``path`` from a forked process running as user nobody (a forked
    child, as nobody could not run this virtual environment's interpreter from /root)."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on, only _exit
        code = 3
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(str(path))
            code = 0
        except PermissionError:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {0: "connected", 1: "refused"}.get(os.waitstatus_to_exitcode(status), "error")


@pytest.fixture
def open_directory() -> Iterator[Path]:
    """A directory anyone may pass through (0711), unlike pytest's own (0700): what keeps
    another user out below it is the run directory's and the socket's own mode."""
    directory = Path(tempfile.mkdtemp(prefix="souk-uds-", dir="/tmp"))
    directory.chmod(0o711)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_an_app_on_a_unix_socket_opens_no_tcp_port_and_only_its_user_connects(
    tmp_path: Path, open_directory: Path, spawn: Callable[..., subprocess.Popen[Any]]
) -> None:
    script = tmp_path / "server.py"
    script.write_text(_SERVER)
    path = open_directory / "run" / "private-1" / "app.sock"
    log = tmp_path / "server.log"
    process = spawn(script, str(path), log=log)
    _wait_for_socket(path, process, log)

    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # Not one listening TCP socket in the process: the application has no port.
    assert not (_socket_inodes(process.pid) & _listening_tcp_inodes())
    if os.geteuid() == 0:
        # Another user is refused by the file system (root itself is not: it may do anything),
        # where a socket left open to all in the same place would let it in.
        assert _connect_as_nobody(path) == "refused"
        control = open_directory / "open.sock"
        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(str(control))
            control.chmod(0o666)
            listener.listen()
            assert _connect_as_nobody(control) == "connected"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    assert not path.exists()


def test_a_stale_socket_of_a_killed_run_is_replaced_but_no_other_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "a-1" / "app.sock"
    first = private_socket.bind(path)
    first.close()  # as a SIGKILLed process leaves it: the file stays
    assert path.exists()
    second = private_socket.bind(path)
    second.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(FileExistsError):
        private_socket.bind(path)


def test_a_socket_path_too_long_for_sun_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 107 bytes"):
        private_socket.bind(tmp_path / ("x" * 120) / "app.sock")


async def test_a_grpc_server_on_a_unix_socket_serves_health_there(tmp_path: Path) -> None:
    path = tmp_path / "run" / "echo-1" / "grpc.sock"
    settings = ServiceSettings(service="echo", instance="echo-1", grpc_uds=path, shutdown_timeout=1)
    server = echo_server(settings)
    await server.start()
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            assert await health_of(channel, "") == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop()
    # Stopped: nobody listens there any more.
    with (
        socket.socket(socket.AF_UNIX) as client,
        pytest.raises((FileNotFoundError, ConnectionRefusedError)),
    ):
        client.connect(str(path))
