"""NATS JetStream for the contract suite: the machine's server, and a private one to restart.

The suite runs on the machine's nats-server (127.0.0.1:4222, required under CI=true).
Restarting that one would break whoever else uses it, so the restart test gets a server of
this session's own (``restartable_url``): the same binary on a free port, its JetStream store
in a temp dir, started the first time it is asked for and stopped with the session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING

from chassis.messaging.cleanup import forget_nats_namespace
from souk.testing import free_port, require_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pytest

HOST = "127.0.0.1"
PORT = 4222
BINARY = "/usr/sbin/nats-server"


def _accepts_connections(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


class PrivateServer:
    """A nats-server with JetStream on a free port, storing in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._log = directory / "nats-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, namespace: str) -> str:
        return f"nats://{HOST}:{self.port}?namespace={namespace}"

    def start(self) -> None:
        command = [BINARY, "-js", "-a", HOST, "-p", str(self.port), "-sd", str(self.directory)]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not _accepts_connections(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the private nats-server did not come up; see {self._log}")
            time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class NatsServer:
    """The machine's server for the suite; a private one, made on demand, for the restart."""

    name = "nats"
    restartable: str | None = None

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._private: PrivateServer | None = None

    def url(self, namespace: str) -> str:
        return f"nats://{HOST}:{PORT}?namespace={namespace}"

    def restartable_url(self, namespace: str) -> str:
        """A URL on the private server, which :meth:`restart` restarts (started on first use)."""
        if self._private is None:
            server = PrivateServer(self._directory)
            server.start()
            self._private = server
        return self._private.url(namespace)

    def restart(self) -> None:
        if self._private is None:
            raise RuntimeError("nothing to restart: restartable_url() was never asked for")
        self._private.restart()

    def stop(self) -> None:
        if self._private is not None:
            self._private.stop()

    async def forget(self, namespace: str) -> None:
        """Delete the namespace's streams (and so their consumers) wherever they may be."""
        await forget_nats_namespace(self.url(namespace), namespace)
        if self._private is not None:
            await forget_nats_namespace(self._private.url(namespace), namespace)


@contextlib.contextmanager
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    require_server("NATS", HOST, PORT)
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    try:
        yield server
    finally:
        server.stop()
