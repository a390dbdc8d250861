"""The W3C Trace Context suite's test service, built on the chassis like every Souk service.

``POST /test`` takes ``[{"url": ..., "arguments": [...]}, ...]`` and, for each item, POSTs
``arguments`` to ``url`` through the chassis's ``HttpUpstream`` (the client every Souk service
calls another with), so the suite sees what the chassis propagates from a request to a call.

Run: ``python tests/trace_context/service.py PORT``.
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
from fastapi import APIRouter, FastAPI, Request

from chassis import ServiceSettings, create_app
from chassis.serve import run
from chassis.tracing import client_tracing
from chassis.upstream import HttpUpstream

router = APIRouter()


@router.post("/test")
async def call_back(request: Request) -> dict[str, int]:
    """Call every URL of the body with its arguments, one after another."""
    session: aiohttp.ClientSession = request.app.state.session
    items: list[dict[str, Any]] = await request.json()
    for item in items:
        upstream = HttpUpstream("harness", [item["url"]], session, timeout=5, connect_timeout=2)
        await upstream.call("POST", "", body=item.get("arguments", []))  # type: ignore[arg-type]
    return {"called": len(items)}


def build(settings: ServiceSettings) -> FastAPI:
    async def open_session(app: FastAPI) -> None:
        app.state.session = aiohttp.ClientSession(trace_configs=[client_tracing()])

    async def close_session(app: FastAPI) -> None:
        await app.state.session.close()

    return create_app(
        settings,
        title="trace-context test service",
        routers=[router],
        on_startup=[open_session],
        on_shutdown=[close_session],
    )


if __name__ == "__main__":
    run(build, ServiceSettings(service="trace-context", port=int(sys.argv[1]), log_level="warning"))
