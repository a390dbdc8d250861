"""Restart policy and exit descriptions (the processes themselves are in test_system.py)."""

from __future__ import annotations

from souk.supervisor import RestartPolicy, describe_exit


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
