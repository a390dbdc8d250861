"""RabbitMQ for the contract suite: the machine's broker, and a private node to restart.

The suite runs on the machine's RabbitMQ (127.0.0.1:5672, required under CI=true). Restarting
that one would break whoever else uses it, so the restart test gets a node of this session's
own (``restartable_url``), started from the same installation on free ports in a temp dir
when the session first needs RabbitMQ (it boots in a few seconds, while other tests run), and
stopped with the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from chassis.messaging.cleanup import forget_rabbitmq_namespaces
from souk.testing import free_port, require_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest

HOST = "127.0.0.1"
PORT = 5672
SHARED_CTL = "/usr/sbin/rabbitmqctl"
"""The machine's rabbitmqctl: as root it runs as the rabbitmq user, who holds the node's cookie."""
NODE_BIN = Path("/usr/lib/rabbitmq/bin")


def _accepts_connections(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not _accepts_connections(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the private RabbitMQ node did not come up; see {log}")
        time.sleep(0.05)


class PrivateNode:
    """A RabbitMQ node on free ports with its data, logs and Erlang cookie in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.node = f"souk-test-{os.getpid()}-{self.port}@localhost"
        self._log = directory / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        # An empty environment file, so /etc/rabbitmq's (the machine node's) is not read.
        empty = directory / "rabbitmq-env.conf"
        empty.write_text("")
        self._env = os.environ | {
            "HOME": str(directory),
            "RABBITMQ_CONF_ENV_FILE": str(empty),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(directory / "plugins"),
            "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        (directory / "enabled_plugins").write_text("[].\n")

    def url(self, namespace: str) -> str:
        return f"amqp://guest:guest@{HOST}:{self.port}/?namespace={namespace}"

    def launch(self) -> None:
        """Start booting the node (it takes seconds); :meth:`ready` waits for it."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(NODE_BIN / "rabbitmq-server")],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self.directory,
            )

    def ready(self) -> None:
        assert self._process is not None
        try:
            _wait_for_port(self.port, self._process, self._log)
        except RuntimeError:
            self.stop()
            raise

    def restart(self) -> None:
        """Stop the RabbitMQ application (every connection drops) and start it again."""
        assert self._process is not None
        self._ctl("stop_app")
        try:
            self._ctl("start_app")
        finally:
            _wait_for_port(self.port, self._process, self._log)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)  # the start script stops the node on TERM
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            pid_file = self.directory / "rabbitmq.pid"
            node_pid = int(pid_file.read_text()) if pid_file.exists() else None
            for pid in (node_pid, process.pid):
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            process.wait()

    def _ctl(self, command: str) -> None:
        subprocess.run(
            [str(NODE_BIN / "rabbitmqctl"), "-n", self.node, command],
            env=self._env,
            check=True,
            capture_output=True,
            timeout=60,
        )


class RabbitMqServer:
    """The machine's broker for the suite; a private node, booted early, for the restart."""

    name = "rabbitmq"
    restartable: str | None = None

    def __init__(self, directory: Path) -> None:
        self._private = PrivateNode(directory)
        self._private.launch()  # boots while the other tests run
        self._forgotten: list[str] = []

    def url(self, namespace: str) -> str:
        return f"amqp://guest:guest@{HOST}:{PORT}/?namespace={namespace}"

    def restartable_url(self, namespace: str) -> str:
        """A URL on the private node, which :meth:`restart` restarts."""
        self._private.ready()
        return self._private.url(namespace)

    def restart(self) -> None:
        self._private.restart()

    async def forget(self, namespace: str) -> None:
        """Note the namespace; :meth:`close` deletes what it left on the machine's broker.

        AMQP cannot list queues and exchanges, and rabbitmqctl takes a second to start, so the
        session lists them once at its end (the private node goes with the session).
        """
        self._forgotten.append(namespace)

    def close(self) -> None:
        """Delete the forgotten namespaces' queues and exchanges; stop the private node."""
        try:
            if self._forgotten:
                asyncio.run(
                    forget_rabbitmq_namespaces(
                        f"amqp://guest:guest@{HOST}:{PORT}/",
                        self._forgotten,
                        rabbitmqctl=SHARED_CTL,
                    )
                )
        finally:
            self._private.stop()


@contextlib.contextmanager
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMqServer]:
    require_server("RabbitMQ", HOST, PORT)
    server = RabbitMqServer(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield server
    finally:
        server.close()
