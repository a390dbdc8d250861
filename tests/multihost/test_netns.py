"""The LAN of namespaces the multi-host test stands on: cut means cut, and nothing outlives it."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from souk.testing import free_port

from .conftest import FORWARD, require_netns
from .netns import Lan

pytestmark = pytest.mark.multihost

SUBNET = "10.231.1"


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}


def _reaches(lan: Lan, host: str, address: str, port: int) -> bool:
    """Whether a TCP connection from ``host`` to address:port is answered within 2 s."""
    code = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2).close()"
    run = subprocess.run(
        [*lan.exec_prefix(host), sys.executable, "-c", code],
        capture_output=True,
        timeout=20,
        check=False,
    )
    return run.returncode == 0


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A listening socket on the root namespace's loopback, accepting and closing."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    server.accept()[0].close()
                except OSError:
                    continue

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        stop.set()
        thread.join()


def test_every_namespace_is_deleted_even_when_the_block_fails() -> None:
    require_netns()
    made: set[str] = set()

    def failing_test() -> None:
        with Lan(SUBNET) as lan:
            lan.add_host("a", 11)
            made.update({lan.switch, *lan.hosts.values()})
            assert made <= _namespaces()
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_test()
    assert len(made) == 2
    assert not made & _namespaces()


def test_a_host_cut_at_the_switch_is_unreachable_until_restored(
    echo_port: int, tmp_path: Path
) -> None:
    require_netns()
    port = free_port()
    with Lan(SUBNET) as lan:
        server = lan.add_host("db", 2)
        lan.add_host("a", 11)
        # The database host's address forwards to a socket in the machine's own namespace.
        forward = subprocess.Popen(
            [sys.executable, str(FORWARD), f"{server}/{SUBNET}.2/{port}=-/127.0.0.1/{echo_port}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert forward.stdout is not None
            assert forward.stdout.readline().strip() == "ready"
            assert _reaches(lan, "a", f"{SUBNET}.2", port)
            lan.cut("a")
            assert not _reaches(lan, "a", f"{SUBNET}.2", port)
            lan.restore("a")
            deadline = time.monotonic() + 10
            while not _reaches(lan, "a", f"{SUBNET}.2", port):
                assert time.monotonic() < deadline, "the host stayed cut off after restore"
                time.sleep(0.2)
        finally:
            forward.terminate()
            forward.wait(5)
