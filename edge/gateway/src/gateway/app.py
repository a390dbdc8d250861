"""Composition root of the gateway: the chassis app, the edge policies, one catch-all route."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, FastAPI, Request
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

import chassis
from gateway.auth import TokenValidator, authenticate
from gateway.proxy import Proxy, client_address
from gateway.ratelimit import RateLimiter, TokenBuckets, token_buckets
from gateway.security_headers import SecurityHeadersMiddleware
from gateway.settings import GatewaySettings

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(
    settings: GatewaySettings | None = None,
    *,
    token_validator: TokenValidator | None = None,
    buckets: TokenBuckets | None = None,
) -> FastAPI:
    """The gateway; ``token_validator`` checks bearer tokens on routes with ``auth: required``."""
    settings = settings or GatewaySettings()
    guarded = [route.prefix for route in settings.route_table() if route.auth == "required"]
    if guarded and token_validator is None:
        raise ValueError(f"routes {', '.join(guarded)} need a token validator")
    proxy = Proxy(settings)
    limiter = RateLimiter(settings.rate_limits, buckets or token_buckets(settings.redis_url))
    router = APIRouter()

    @router.api_route("/{path:path}", methods=_METHODS, include_in_schema=False)
    async def forward(request: Request) -> Response:
        # Read by the chassis's access log line, written once this request is answered.
        structlog.contextvars.unbind_contextvars("gateway_route", "client_id")
        await limiter.check_ip(client_address(request))
        route = proxy.route_for(request)
        structlog.contextvars.bind_contextvars(gateway_route=route.prefix)
        caller = None
        # (A validator is always there for such routes: create_app refused to build without.)
        if route.auth == "required" and token_validator is not None:
            caller = await authenticate(request.headers, route, token_validator)
            structlog.contextvars.bind_contextvars(client_id=caller.client_id)
            await limiter.check_client(caller.client_id)
        return await proxy.forward(request, route, caller)

    async def start_proxy(app: FastAPI) -> None:
        await proxy.start()
        app.state.proxy = proxy

    async def close_proxy(_: FastAPI) -> None:
        await proxy.close()
        await limiter.buckets.close()

    app = chassis.create_app(
        settings,
        title="Souk gateway",
        description="The one public entry: routes /api/<service>/... to the service's instances.",
        routers=[router],
        on_startup=[start_proxy],
        on_shutdown=[close_proxy],
    )
    # Appended, so they sit inside the chassis's request-context middleware: preflights and
    # every other answer get a request id, a metrics sample and an access log line too.
    app.user_middleware.append(
        Middleware(SecurityHeadersMiddleware, hsts_max_age=settings.hsts_max_age)
    )
    if settings.cors.allowed_origins:
        app.user_middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors.allowed_origins,
                allow_methods=settings.cors.allowed_methods,
                allow_headers=settings.cors.allowed_headers,
                expose_headers=settings.cors.exposed_headers,
                max_age=settings.cors.max_age,
            )
        )
    return app
