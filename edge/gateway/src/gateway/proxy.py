"""Forwarding a request to one instance of its upstream, and the response back."""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
from multidict import CIMultiDict
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from yarl import URL

from chassis import ProblemError, get_logger
from chassis.requests import FORWARDED_PREFIX_HEADER, INSTANCE_HEADER, outbound_headers
from gateway.balancer import RoundRobin

if TYPE_CHECKING:
    from starlette.requests import Request

    from gateway.settings import GatewaySettings, Route

UPSTREAM_INSTANCE_HEADER = "x-souk-upstream"
# Connection-scoped headers (RFC 9110 §7.6.1) and those the client library sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Safe to send again after a connection broke mid-request: a repeat has the same effect.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_log = get_logger("gateway.proxy")


class Proxy:
    """Matches a path to a route and forwards the request to a healthy instance."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.routes = settings.route_table()
        self.balancers = {
            name: RoundRobin(urls, eject_seconds=settings.eject_seconds)
            for name, urls in settings.upstreams.items()
        }
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # One pooled session for the process: a session per call leaks connections.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, limit_per_host=128),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def match(self, path: str) -> Route | None:
        return next((route for route in self.routes if route.matches(path)), None)

    async def forward(self, request: Request) -> Response:
        path = request.url.path
        route = self.match(path)
        raw_path = (request.scope.get("raw_path") or path.encode()).decode("latin-1")
        # The route matched the decoded path; the upstream gets the path as the client encoded
        # it. A prefix written with escapes (/api/%63atalog) has no clean remainder: refuse it.
        if route is None or not route.matches(raw_path):
            raise ProblemError(404, "no-route", "No route", f"No service serves {path}")
        upstream_path = route.upstream_path(raw_path)
        if _normalised(upstream_path) in self.settings.internal_paths:
            raise ProblemError(404, "no-route", "No route", f"No service serves {path}")
        body = await self._read_body(request)
        headers = self._upstream_headers(request)
        if route.strip_prefix and route.prefix != "/":
            headers[FORWARDED_PREFIX_HEADER] = route.prefix
        balancer = self.balancers[route.upstream]
        timeout = aiohttp.ClientTimeout(
            total=route.timeout, sock_connect=self.settings.connect_timeout
        )
        query = request.url.query
        for base in balancer.candidates():
            url = URL(f"{base}{upstream_path}" + (f"?{query}" if query else ""), encoded=True)
            try:
                upstream = await self._client.request(
                    request.method,
                    url,
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    timeout=timeout,
                )
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                # Nothing reached the instance: any method may go to the next one.
                _log.warning("upstream refused", upstream=route.upstream, url=base, error=str(exc))
                balancer.eject(base)
                continue
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                balancer.eject(base)
                if request.method in _IDEMPOTENT:
                    _log.warning("upstream dropped, retrying", upstream=route.upstream, url=base)
                    continue
                raise ProblemError(
                    502, "upstream-failed", "Bad Gateway", f"{route.upstream} dropped the request"
                ) from exc
            except TimeoutError as exc:
                raise ProblemError(
                    504,
                    "upstream-timeout",
                    "Gateway Timeout",
                    f"{route.upstream} did not answer within {route.timeout}s",
                ) from exc
            balancer.restore(base)
            return self._downstream_response(upstream)
        raise ProblemError(
            503,
            "upstream-unavailable",
            "Service Unavailable",
            f"No instance of {route.upstream} is reachable",
            headers={"Retry-After": "1"},
        )

    @property
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the proxy was not started")
        return self._session

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        limit = self.settings.max_body_bytes
        if declared and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise _too_large(limit)
        return bytes(body)

    @staticmethod
    def _upstream_headers(request: Request) -> CIMultiDict[str]:
        dropped = _HOP_BY_HOP | _named_in_connection(request.headers.getlist("connection"))
        dropped |= {"traceparent", "tracestate", "x-forwarded-for", "x-forwarded-proto"}
        dropped |= {"x-forwarded-host", FORWARDED_PREFIX_HEADER}
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value) for name, value in request.headers.items() if name not in dropped
        )
        client = request.client.host if request.client else ""
        forwarded_for = request.headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded_for}, {client}" if forwarded_for else client
        headers["x-forwarded-proto"] = request.url.scheme
        headers["x-forwarded-host"] = request.headers.get("host", "")
        headers.update(outbound_headers())
        return headers

    @staticmethod
    def _downstream_response(upstream: aiohttp.ClientResponse) -> Response:
        dropped = _HOP_BY_HOP - {"content-length"}
        dropped |= _named_in_connection(upstream.headers.getall("connection", []))
        dropped |= {INSTANCE_HEADER, "x-request-id", "date", "server"}
        # Pairs, not a dict: repeated headers (Set-Cookie) must all reach the client.
        raw_headers = [
            (name, value)
            for name, value in upstream.raw_headers
            if name.decode("latin-1").lower() not in dropped
        ]
        instance = upstream.headers.get(INSTANCE_HEADER)
        if instance:
            raw_headers.append((UPSTREAM_INSTANCE_HEADER.encode(), instance.encode("latin-1")))

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            finally:
                upstream.release()

        # The background task releases the connection even when the client went away
        # before the body was read (the generator's finally would wait for GC).
        response = StreamingResponse(
            body(), status_code=upstream.status, background=BackgroundTask(upstream.release)
        )
        response.raw_headers = raw_headers
        return response


def _named_in_connection(values: list[str]) -> set[str]:
    """Headers that a ``Connection`` header declares hop-by-hop (RFC 9110 §7.6.1)."""
    return {token.strip().lower() for value in values for token in value.split(",") if token}


def _normalised(path: str) -> str:
    # What the upstream's router will see: escapes decoded, dot segments and // collapsed.
    collapsed = re.sub(r"/+", "/", unquote(path))
    return posixpath.normpath(collapsed) if collapsed else "/"


def _too_large(limit: int) -> ProblemError:
    return ProblemError(
        413,
        "payload-too-large",
        "Content Too Large",
        f"Request bodies are limited to {limit} bytes",
    )
