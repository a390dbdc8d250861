from __future__ import annotations

import pytest

from gateway.balancer import RoundRobin


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_request_starts_at_the_next_instance():
    balancer = RoundRobin(["a", "b", "c"], eject_seconds=5)
    firsts = [balancer.candidates()[0] for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]


def test_every_instance_is_a_candidate_exactly_once():
    balancer = RoundRobin(["a", "b", "c"], eject_seconds=5)
    assert sorted(balancer.candidates()) == ["a", "b", "c"]


def test_an_ejected_instance_is_tried_last_until_its_time_is_up():
    clock = FakeClock()
    balancer = RoundRobin(["a", "b", "c"], eject_seconds=5, clock=clock)
    balancer.eject("a")
    assert all(balancer.candidates()[-1] == "a" for _ in range(3))
    clock.now += 5.1
    assert not balancer.is_ejected("a")
    assert "a" in [balancer.candidates()[0] for _ in range(3)]


def test_the_instance_ejected_longest_ago_is_tried_first_when_all_are_ejected():
    clock = FakeClock()
    balancer = RoundRobin(["a", "b"], eject_seconds=5, clock=clock)
    balancer.eject("b")
    clock.now += 1
    balancer.eject("a")
    assert balancer.candidates() == ["b", "a"]


def test_a_restored_instance_is_healthy_at_once():
    clock = FakeClock()
    balancer = RoundRobin(["a", "b"], eject_seconds=60, clock=clock)
    balancer.eject("a")
    balancer.restore("a")
    assert not balancer.is_ejected("a")


def test_a_balancer_needs_an_instance():
    with pytest.raises(ValueError, match="at least one"):
        RoundRobin([], eject_seconds=1)
