"""The chassis's one ASGI middleware: request id, server span, RED metrics, access log.

Plain ASGI rather than ``BaseHTTPMiddleware``, which breaks contextvars propagation and
streaming responses.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.datastructures import Headers, MutableHeaders

from chassis.logs import get_logger
from chassis.metrics import ROUTE_SCOPE_KEY
from chassis.problems import internal_error_response
from chassis.requests import INSTANCE_HEADER, REQUEST_ID_HEADER, request_id_from, request_id_var
from chassis.tracing import activated, propagator

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from chassis.metrics import HttpMetrics

_log = get_logger("chassis.access")
UNMATCHED_ROUTE = "<unmatched>"
# Probes are frequent and uninteresting: measure them, but keep them out of the access log.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContextMiddleware:
    """Give each HTTP request an id, a server span, a metrics sample and an access log line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer: trace.Tracer,
        metrics: HttpMetrics,
        instance: str,
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.metrics = metrics
        self.instance = instance.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = Headers(scope=scope)
        request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
        method: str = scope["method"]
        path: str = scope["path"]
        parent = propagator.extract(carrier=headers)
        status = 500
        started = time.perf_counter()

        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers[REQUEST_ID_HEADER] = request_id
                response_headers[INSTANCE_HEADER] = self.instance.decode()
            await send(message)

        token = request_id_var.set(request_id)
        span = self.tracer.start_span(f"{method} {path}", context=parent, kind=SpanKind.SERVER)
        self.metrics.in_flight.inc()
        try:
            with (
                activated(span, parent),
                structlog.contextvars.bound_contextvars(request_id=request_id),
            ):
                try:
                    await self.app(scope, receive, send_with_headers)
                except Exception as exc:
                    # Answered here, inside the request's context, so the 500 carries the
                    # request id and trace id; past the first byte there is nothing to fix.
                    if response_started:
                        raise
                    response = internal_error_response(path, exc)
                    await response(scope, receive, send_with_headers)
                finally:
                    route = _route_template(scope)
                    seconds = time.perf_counter() - started
                    self.metrics.observe(method, route, status, seconds)
                    span.update_name(f"{method} {route}")
                    span.set_attributes(
                        {
                            "http.request.method": method,
                            "http.route": route,
                            "http.response.status_code": status,
                        }
                    )
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    if path not in _QUIET_PATHS:
                        _log.info(
                            "request",
                            method=method,
                            path=path,
                            route=route,
                            status=status,
                            duration_ms=round(seconds * 1000, 2),
                        )
        finally:
            span.end()
            self.metrics.in_flight.dec()
            request_id_var.reset(token)


def _route_template(scope: Scope) -> str:
    # The template (`/products/{product_id}`), never the raw path: labels must stay few.
    named = scope.get(ROUTE_SCOPE_KEY)
    if isinstance(named, str):
        return named
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
