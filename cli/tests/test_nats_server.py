"""The private NATS server tests restart: same port and store, a new process, none left."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from souk.testing import NatsMissingError, NatsServer, pid_alive


@pytest.fixture
def nats(tmp_path: Path) -> NatsServer:
    try:
        return NatsServer(tmp_path, down_seconds=0.2)
    except NatsMissingError as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; it is required under CI=true")
        pytest.skip(str(missing))


def test_the_restart_command_brings_a_new_server_back_on_the_same_port(nats: NatsServer) -> None:
    nats.start()
    try:
        first = nats.pid
        assert first is not None
        ran = subprocess.run(
            nats.restart_command, capture_output=True, text=True, timeout=60, check=False
        )
        assert ran.returncode == 0, ran.stderr
        second = nats.pid
        assert second not in (None, first)
        assert not pid_alive(first)
        assert nats.starts == 2
        with socket.create_connection((nats.host, nats.port), timeout=2):
            pass
        # JetStream's store is the same directory across the restart.
        assert (nats.directory / "jetstream").is_dir()
    finally:
        nats.stop()
    assert not pid_alive(second)
    assert nats.pid is None


def test_a_stopped_server_is_not_started_again(nats: NatsServer) -> None:
    nats.start()
    pid = nats.pid
    nats.stop()
    assert pid is not None
    assert not pid_alive(pid)
    assert nats.starts == 1
