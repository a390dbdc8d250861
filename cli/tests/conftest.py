"""Shared helpers: topologies made of the fake service, and `souk` run as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from souk.state import pid_alive, read_state
from souk.testing import SoukSystem

FAKES = Path(__file__).parent / "fakes"

FakeSpec = Callable[..., dict[str, Any]]
RunSouk = Callable[..., subprocess.CompletedProcess[str]]
MakeSystem = Callable[..., SoukSystem]


def fake_spec(service: str, *, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    """A topology entry running the fake service; `env=` adds variables."""
    env = {"FAKE_SERVICE": service, "PYTHONPATH": str(FAKES), **extra.pop("env", {})}
    return {"module": "souk_fake", "replicas": replicas, "env": env, **extra}


@pytest.fixture(scope="session")
def fake() -> FakeSpec:
    return fake_spec


@pytest.fixture
def run_souk(tmp_path: Path) -> Iterator[RunSouk]:
    """Run `python -m souk ARGS` to completion; whatever it started is killed in teardown."""
    data_dirs: list[Path] = []

    def run(
        *args: str, cwd: Path = tmp_path, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        if "--data-dir" in args:
            data_dirs.append(cwd / args[args.index("--data-dir") + 1])
        return subprocess.run(
            [sys.executable, "-m", "souk", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=cwd,
        )

    yield run
    for data_dir in data_dirs:
        state = read_state(data_dir)
        if state is None or state.stopped_at is not None:
            continue  # nothing ran, or it stopped by itself: its pids may belong to others now
        # A command that should have refused may have started things: stop them by pid.
        for pid in [state.pid, *(i.pid for i in state.instances if i.pid)]:
            if pid != os.getpid() and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def make_system(tmp_path: Path) -> Iterator[MakeSystem]:
    """Build SoukSystems in tmp_path; teardown stops each one, whatever the test did."""
    systems: list[SoukSystem] = []

    def make(topology: dict[str, Any] | str, **options: Any) -> SoukSystem:
        system = SoukSystem(topology, tmp_path / f"system-{len(systems)}", **options)
        systems.append(system)
        return system

    yield make
    failures: list[AssertionError] = []
    for system in systems:
        try:
            system.stop()
        except AssertionError as exc:
            failures.append(exc)
    if failures:
        raise failures[0]
