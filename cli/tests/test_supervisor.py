"""Restart policy, exit descriptions and failure reporting (processes: test_system.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from souk.plan import build_plan
from souk.supervisor import RestartPolicy, Supervisor, describe_exit
from souk.topology import parse_topology


def test_backoff_doubles_up_to_the_maximum() -> None:
    policy = RestartPolicy()
    delays: list[float] = []
    delay: float | None = None
    for _ in range(8):
        delay = policy.next_delay(delay, uptime=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_backoff_resets_after_a_long_enough_run() -> None:
    policy = RestartPolicy()
    assert policy.next_delay(8.0, uptime=29.0) == 10.0
    assert policy.next_delay(8.0, uptime=30.0) == 0.5


def test_exit_descriptions() -> None:
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-9) == "was killed by SIGKILL"


class RecordingReporter:
    """A Reporter that keeps what it was told."""

    def __init__(self, _snapshot: object) -> None:
        self.events: list[tuple[str, str]] = []
        self.problems: list[str] = []

    def start(self) -> None:
        pass

    def event(self, instance: str, message: str) -> None:
        self.events.append((instance, message))

    def problem(self, message: str) -> None:
        self.problems.append(message)

    def all_ready(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _supervisor(tmp_path: Path) -> Supervisor:
    topology = parse_topology("services:\n  catalog:\n    replicas: 1\n", "souk.yaml")
    return Supervisor(
        build_plan(topology, tmp_path),
        stop_tiers=[["catalog"]],
        topology_path=tmp_path / "souk.yaml",
        data_dir=tmp_path,
        reporter_factory=RecordingReporter,
    )


async def test_an_unwritable_state_file_is_reported_once_and_supervision_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    supervisor = _supervisor(tmp_path)

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("souk.supervisor.write_state", disk_full)
    supervisor._save()
    supervisor._save()
    reporter = supervisor.reporter
    assert isinstance(reporter, RecordingReporter)
    assert len(reporter.problems) == 1
    assert "No space left on device" in reporter.problems[0]


async def test_a_crashed_supervision_task_is_reported_and_stops_the_system(
    tmp_path: Path,
) -> None:
    supervisor = _supervisor(tmp_path)

    async def broken() -> None:
        raise RuntimeError("keeper bug")

    task = asyncio.create_task(broken())
    task.add_done_callback(supervisor._on_task_done)
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)
    reporter = supervisor.reporter
    assert isinstance(reporter, RecordingReporter)
    assert any("keeper bug" in problem for problem in reporter.problems)
    assert supervisor._stop_requested.is_set()
