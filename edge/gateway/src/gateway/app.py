"""Composition root of the gateway: the chassis app plus one catch-all proxy route."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

import chassis
from gateway.proxy import Proxy
from gateway.settings import GatewaySettings

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    proxy = Proxy(settings)
    router = APIRouter()

    @router.api_route("/{path:path}", methods=_METHODS, include_in_schema=False)
    async def forward(request: Request) -> Response:
        return await proxy.forward(request)

    async def start_proxy(app: FastAPI) -> None:
        await proxy.start()
        app.state.proxy = proxy

    async def close_proxy(_: FastAPI) -> None:
        await proxy.close()

    return chassis.create_app(
        settings,
        title="Souk gateway",
        description="The one public entry: routes /api/<service>/... to the service's instances.",
        routers=[router],
        on_startup=[start_proxy],
        on_shutdown=[close_proxy],
    )
