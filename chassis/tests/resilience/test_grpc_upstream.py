"""A gRPC upstream's replica that stops answering is ejected by its breaker, then let back.

Two real gRPC servers in the process; one "freezes" (its method waits without answering,
as a SIGSTOP'd replica does), and calls must move to the other once the frozen one's
breaker opens: the number of calls that reach the frozen replica is the breaker's
threshold, whatever the number of calls made.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import grpc
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from chassis import ServiceSettings
from chassis.grpc import GrpcServer, GrpcUpstream
from chassis.resilience import BreakerState, DependencyPolicy, Resilience
from chassis.resilience.metrics import ResilienceCollector
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SERVICE = "souk.test.Echo"
NAME = f"/{SERVICE}/Name"


class Replica:
    """A server whose one method answers its name, unless it is frozen: then it waits."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reached = 0
        self.answered = 0
        self._thawed = asyncio.Event()
        self._thawed.set()

        async def answer(_: bytes, __: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            self.reached += 1
            await self._thawed.wait()
            self.answered += 1
            return name.encode()

        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Name": grpc.unary_unary_rpc_method_handler(answer)}
        )
        self.server = GrpcServer(
            ServiceSettings(service="echo", instance=name, grpc_port=0, shutdown_timeout=1),
            register=lambda server: server.add_generic_rpc_handlers((handler,)),
            service_names=[SERVICE],
        )

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    @property
    def url(self) -> str:
        return f"grpc://127.0.0.1:{self.server.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@contextlib.asynccontextmanager
async def replicas() -> AsyncIterator[tuple[Replica, Replica]]:
    first, second = Replica("echo-1"), Replica("echo-2")
    await first.server.start()
    await second.server.start()
    try:
        yield first, second
    finally:
        first.thaw()
        second.thaw()
        await first.server.stop()
        await second.server.stop()


def upstream_of(
    *servers: Replica, reset_timeout: float = 60.0, resilience: Resilience | None = None
) -> GrpcUpstream:
    """Tries of 0.3 s, two per safe call; a replica's breaker opens after 2 failures."""
    resilience = resilience or Resilience(
        overrides={
            "echo": DependencyPolicy(
                failure_threshold=2, reset_timeout=reset_timeout, base_delay=0.0
            )
        }
    )
    return GrpcUpstream(
        "echo", [server.url for server in servers], timeout=0.3, resilience=resilience
    )


async def name_of(upstream: GrpcUpstream, *, safe: bool = True) -> str:
    answer: bytes = await upstream.call(lambda channel: channel.unary_unary(NAME)(b""), safe=safe)
    return answer.decode()


async def test_calls_move_to_the_healthy_replica_once_the_frozen_ones_breaker_opens() -> None:
    async with replicas() as (first, second):
        upstream = upstream_of(first, second)
        try:
            first.freeze()
            answers = [await name_of(upstream) for _ in range(12)]
        finally:
            await upstream.close()
        frozen, healthy = upstream.pipelines

    assert answers == ["echo-2"] * 12
    # The frozen replica got as many calls as it takes to open its breaker, no more.
    assert first.reached == 2
    assert first.answered == 0
    assert frozen.breaker.state is BreakerState.OPEN
    assert frozen.breaker.rejected == 0  # skipped while open, never refused mid-call
    assert healthy.breaker.state is BreakerState.CLOSED
    assert frozen.retries == 2  # each call that reached it was tried again on the other


async def test_a_thawed_replica_is_let_back_by_a_half_open_probe() -> None:
    async with replicas() as (first, second):
        upstream = upstream_of(first, second, reset_timeout=0.5)
        frozen = upstream.pipelines[0]
        try:
            first.freeze()
            while frozen.breaker.state is not BreakerState.OPEN:
                assert await name_of(upstream) == "echo-2"
            first.thaw()
            await asyncio.sleep(frozen.policy.reset_timeout + 0.1)
            assert frozen.breaker.state is BreakerState.HALF_OPEN
            answers = [await name_of(upstream) for _ in range(6)]
        finally:
            await upstream.close()

    assert frozen.breaker.state is BreakerState.CLOSED
    assert answers.count("echo-1") == 3
    assert answers.count("echo-2") == 3


async def test_a_call_not_safe_to_repeat_is_not_sent_to_the_other_replica() -> None:
    async with replicas() as (first, second):
        upstream = upstream_of(first, second)
        try:
            first.freeze()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await name_of(upstream, safe=False)
        finally:
            await upstream.close()

    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert first.reached == 1
    assert second.reached == 0


async def test_with_every_replicas_breaker_open_a_call_fails_at_once_unsent() -> None:
    async with replicas() as (first, second):
        upstream = upstream_of(first, second)
        try:
            first.freeze()
            second.freeze()
            for _ in range(2):
                with pytest.raises((UpstreamFailure, grpc.aio.AioRpcError)):
                    await name_of(upstream)
            reached = first.reached + second.reached
            with pytest.raises(UpstreamFailure, match="circuit open") as refused:
                await name_of(upstream)
        finally:
            await upstream.close()

    assert refused.value.transient
    assert first.reached + second.reached == reached == 4


async def test_each_replicas_breaker_is_a_metric_of_its_own() -> None:
    resilience = Resilience(
        overrides={"echo": DependencyPolicy(failure_threshold=2, base_delay=0.0)}
    )
    async with replicas() as (first, second):
        upstream = upstream_of(first, second, resilience=resilience)
        try:
            first.freeze()
            for _ in range(4):
                await name_of(upstream)
        finally:
            await upstream.close()
        registry = CollectorRegistry()
        registry.register(ResilienceCollector(resilience))
        text = generate_latest(registry).decode()

    states = {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "souk_breaker_state"
    }
    assert states == {f"echo@{first.address}": 2, f"echo@{second.address}": 0}


async def test_a_policy_for_one_replica_overrides_the_upstreams() -> None:
    async with replicas() as (first, second):
        resilience = Resilience(
            overrides={
                "echo": DependencyPolicy(failure_threshold=2),
                f"echo@{second.address}": DependencyPolicy(failure_threshold=7),
            }
        )
        upstream = upstream_of(first, second, resilience=resilience)
        await upstream.close()

    assert [p.policy.failure_threshold for p in upstream.pipelines] == [2, 7]
