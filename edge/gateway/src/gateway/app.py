"""Composition root of the gateway: the chassis app, the edge policies, one catch-all route."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, FastAPI, Request
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

import chassis
from chassis.auth import AccessTokenValidator
from chassis.metrics import name_route
from gateway.auth import authenticate
from gateway.openapi import PublicApiDocument, publish
from gateway.ops import OpsNetworksOnlyMiddleware
from gateway.proxy import Proxy, client_address
from gateway.ratelimit import RateLimiter, TokenBuckets, token_buckets
from gateway.security_headers import SecurityHeadersMiddleware
from gateway.settings import GatewaySettings
from gateway.upstream_metrics import UpstreamMetrics, route_template

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(
    settings: GatewaySettings | None = None,
    *,
    token_validator: AccessTokenValidator | None = None,
    buckets: TokenBuckets | None = None,
) -> FastAPI:
    """The gateway; bearer tokens on ``auth: required`` routes are checked by ``token_validator``.

    Without one, a validator of the configured issuer (``auth_issuer``) is built at start-up.
    """
    settings = settings or GatewaySettings()
    guarded = [route.prefix for route in settings.route_table() if route.auth == "required"]
    if guarded and token_validator is None and settings.auth_issuer is None:
        raise ValueError(
            f"routes {', '.join(guarded)} need a token validator: set GATEWAY_AUTH_ISSUER"
            " (and GATEWAY_AUTH_AUDIENCE) and give the gateway an 'identity' upstream"
        )
    proxy = Proxy(settings)
    limiter = RateLimiter(settings.rate_limits, buckets or token_buckets(settings.redis_url))
    router = APIRouter()
    upstream_metrics = UpstreamMetrics()

    @router.api_route("/{path:path}", methods=_METHODS, include_in_schema=False)
    async def forward(request: Request) -> Response:
        # Read by the chassis's access log line, written once this request is answered.
        structlog.contextvars.unbind_contextvars("gateway_route", "client_id")
        await limiter.check_ip(client_address(request))
        await limiter.check_expensive(request.method, request.url.path, client_address(request))
        route = proxy.route_for(request)
        name_route(request, route_template(route))
        structlog.contextvars.bind_contextvars(gateway_route=route.prefix)
        token = None
        if route.auth == "required":
            # Always there for such routes: create_app refused to build without one.
            validator: AccessTokenValidator = request.app.state.token_validator
            token = await authenticate(request.headers, route, validator)
            structlog.contextvars.bind_contextvars(client_id=token.client_id)
            await limiter.check_client(token)
        with upstream_metrics.timed(request.method, route) as sample:
            response = await proxy.forward(request, route, token)
            sample.status = response.status_code
            return response

    async def start_edge(app: FastAPI) -> None:
        await proxy.start()
        app.state.proxy = proxy
        if token_validator is not None:  # else the chassis built one from auth_issuer
            app.state.token_validator = token_validator

    async def close_edge(_: FastAPI) -> None:
        await proxy.close()
        await limiter.buckets.close()

    app = chassis.create_app(
        settings,
        title="Souk gateway",
        description="The one public entry: routes /api/<service>/... to the service's instances.",
        routers=[router],
        on_startup=[start_edge],
        on_shutdown=[close_edge],
    )
    upstream_metrics.register(app.state.http_metrics.registry)
    # The proxy's pooled session fetches the upstreams' documents too.
    publish(
        app,
        PublicApiDocument(
            settings, proxy, lambda: proxy.client, title=app.title, version=app.version
        ),
    )
    # Appended, so they sit inside the chassis's request-context middleware: preflights and
    # every other answer get a request id, a metrics sample and an access log line too.
    app.user_middleware.append(
        Middleware(SecurityHeadersMiddleware, hsts_max_age=settings.hsts_max_age)
    )
    app.user_middleware.append(
        Middleware(OpsNetworksOnlyMiddleware, networks=settings.ops_networks)
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
