"""The REST client through the resilience pipeline: safe calls retried on the next instance,
unsafe ones not, a broken upstream failed fast by its breaker, the deadline sent along."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp import web

from chassis.resilience import DependencyPolicy, Resilience, deadline
from chassis.upstream import HttpUpstream, UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Catalog:
    """A tiny upstream that counts its requests and remembers the deadline header."""

    def __init__(self) -> None:
        self.requests = 0
        self.deadlines: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.deadlines.append(request.headers.get(deadline.DEADLINE_HEADER))
        return web.json_response({"sku": "SAFFRON-1G"})


@pytest.fixture
async def catalog() -> AsyncIterator[tuple[Catalog, str]]:
    counted = Catalog()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", counted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield counted, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_read_that_finds_one_instance_down_is_retried_on_the_next(
    catalog: tuple[Catalog, str], session: aiohttp.ClientSession
) -> None:
    counted, url = catalog
    resilience = Resilience()
    upstream = HttpUpstream(
        "catalog",
        [_closed_port_url(), url],
        session,
        timeout=1,
        connect_timeout=0.5,
        resilience=resilience,
    )

    answer = await upstream.call("GET", "/products/SAFFRON-1G")

    assert answer.status == 200
    assert (counted.requests, resilience.pipeline("catalog").retries) == (1, 1)


async def test_a_write_without_an_idempotency_key_is_not_retried(
    catalog: tuple[Catalog, str], session: aiohttp.ClientSession
) -> None:
    counted, url = catalog
    upstream = HttpUpstream(
        "catalog",
        [_closed_port_url(), url],
        session,
        timeout=1,
        connect_timeout=0.5,
        resilience=Resilience(),
    )

    with pytest.raises(UpstreamFailure):
        await upstream.call("POST", "/products", body={})
    assert counted.requests == 0
    keyed = await upstream.call("POST", "/products", body={}, headers={"Idempotency-Key": "k"})
    assert keyed.status == 200


async def test_an_upstream_that_keeps_failing_is_failed_fast_by_its_breaker(
    session: aiohttp.ClientSession,
) -> None:
    resilience = Resilience(overrides={"billing": DependencyPolicy(failure_threshold=2)})
    upstream = HttpUpstream(
        "billing",
        [_closed_port_url()],
        session,
        timeout=1,
        connect_timeout=0.5,
        resilience=resilience,
    )
    for _ in range(2):
        with pytest.raises(UpstreamFailure):
            await upstream.call("POST", "/payments")

    with pytest.raises(UpstreamFailure, match="circuit open") as refused:
        await upstream.call("POST", "/payments")
    assert refused.value.transient


async def test_a_call_carries_what_is_left_of_the_deadline(
    catalog: tuple[Catalog, str], session: aiohttp.ClientSession
) -> None:
    counted, url = catalog
    upstream = HttpUpstream(
        "catalog", [url], session, timeout=5, connect_timeout=0.5, resilience=Resilience()
    )

    with deadline.within(0.8):
        await upstream.call("GET", "/products")
    await upstream.call("GET", "/products")

    sent, unbounded = counted.deadlines
    assert sent is not None
    assert 0 < int(sent) <= 800
    assert unbounded is None


@pytest.fixture
async def billing() -> AsyncIterator[tuple[list[str], str]]:
    """An upstream that answers every request 503 with the problem type the path names."""
    answered: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        answered.append(kind)
        return web.json_response(
            {"type": f"https://souk.example/problems/{kind}", "title": kind, "status": 503},
            status=503,
            content_type="application/problem+json",
            headers={"Retry-After": "1"},
        )

    app = web.Application()
    app.router.add_post("/{kind}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield answered, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_503_blaming_the_upstreams_own_dependency_does_not_open_its_breaker(
    billing: tuple[list[str], str], session: aiohttp.ClientSession
) -> None:
    answered, url = billing
    resilience = Resilience(overrides={"billing": DependencyPolicy(failure_threshold=2)})
    upstream = HttpUpstream(
        "billing",
        [url],
        session,
        timeout=1,
        connect_timeout=0.5,
        resilience=resilience,
        dependency_problems={"payment-outcome-unknown"},
    )

    # Billing answers at once that a provider did not: every call is sent, none refused.
    for _ in range(5):
        with pytest.raises(UpstreamFailure, match="answered 503") as failed:
            await upstream.call("POST", "/payment-outcome-unknown")
        assert failed.value.transient
        assert not failed.value.its_own
    assert answered == ["payment-outcome-unknown"] * 5
    # A 503 of its own (shedding, say) still counts: two open the breaker.
    for _ in range(2):
        with pytest.raises(UpstreamFailure, match="answered 503"):
            await upstream.call("POST", "/overloaded")
    with pytest.raises(UpstreamFailure, match="circuit open"):
        await upstream.call("POST", "/payment-outcome-unknown")
    assert answered[5:] == ["overloaded"] * 2
