"""Overload shedding: a full lane answers 503 at once, the other lane and probes still work."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chassis.resilience.shedding import Lanes, LoadShedding


class SlowCheckout:
    """A checkout route that starts, then waits until the test lets it finish."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.may_finish = asyncio.Event()

    async def respond(self, _: Request) -> JSONResponse:
        self.started.set()
        await self.may_finish.wait()
        return JSONResponse({"status": "PENDING"}, status_code=201)


async def order(_: Request) -> JSONResponse:
    return JSONResponse({"id": "o-1"})


def shop(lanes: Lanes, checkout: SlowCheckout | None = None) -> LoadShedding:
    app = Starlette(
        routes=[
            Route("/orders", (checkout or SlowCheckout()).respond, methods=["POST"]),
            Route("/orders/o-1", order),
            Route("/healthz", order),
        ]
    )
    return LoadShedding(app, lanes=lanes)


async def test_a_slow_checkout_sheds_other_writes_but_not_reads_nor_probes() -> None:
    lanes = Lanes.of(reads=1, writes=1)
    checkout = SlowCheckout()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shop(lanes, checkout)), base_url="http://orders"
    ) as client:
        slow = asyncio.create_task(client.post("/orders"))
        async with asyncio.timeout(5):
            await checkout.started.wait()

        shed = await client.post("/orders")
        read = await client.get("/orders/o-1")
        probe = await client.get("/healthz")

        checkout.may_finish.set()
        assert (await slow).status_code == 201
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.headers["content-type"] == "application/problem+json"
    assert shed.json()["type"].endswith("/overloaded")
    assert (read.status_code, probe.status_code) == (200, 200)
    assert (lanes.writes.shed, lanes.reads.shed, lanes.writes.working) == (1, 0, 0)


async def test_a_request_whose_deadline_has_passed_is_not_started() -> None:
    lanes = Lanes.of(reads=4, writes=4)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shop(lanes)), base_url="http://orders"
    ) as client:
        expired = await client.get("/orders/o-1", headers={"x-request-deadline-ms": "0"})
        alive = await client.get("/orders/o-1", headers={"x-request-deadline-ms": "500"})

    assert expired.status_code == 504
    assert expired.json()["type"].endswith("/deadline-exceeded")
    assert alive.status_code == 200
