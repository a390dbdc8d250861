"""gRPC calls carry what is left of the request's deadline as their own (``grpc-timeout``)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from chassis.grpc import channel_for
from chassis.resilience import deadline
from chassis.tests.test_grpc import serving, urls_of, whoami


async def test_a_grpc_call_ends_when_the_requests_deadline_does_not_at_its_own_timeout() -> None:
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with deadline.within(0.2), pytest.raises(grpc.aio.AioRpcError) as failed:
            await whoami(channel, b"slow", deadline=5)

        assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert loop.time() - started < 2


async def test_a_grpc_call_past_the_deadline_is_not_sent() -> None:
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        with deadline.within(0), pytest.raises(grpc.aio.AioRpcError) as failed:
            await whoami(channel, b"", deadline=5)

        assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert (await whoami(channel))["instance"] == "echo-1"
