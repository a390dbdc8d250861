"""Forwarding a request to one instance of its upstream, and the response back."""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
from multidict import CIMultiDict
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse
from yarl import URL

from chassis import ProblemError, get_logger
from chassis.connections import tcp_connector
from chassis.requests import FORWARDED_PREFIX_HEADER, INSTANCE_HEADER, outbound_headers
from chassis.resilience import deadline
from chassis.tracing import client_tracing
from gateway.auth import caller_headers
from gateway.balancer import RoundRobin

if TYPE_CHECKING:
    from starlette.requests import Request

    from chassis.auth import AccessToken
    from gateway.settings import GatewaySettings, Route

UPSTREAM_INSTANCE_HEADER = "x-souk-upstream"
# Answers up to this size are read whole before they are passed on (see Proxy.forward).
BUFFERED_BODY_LIMIT = 1_048_576
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
# Request headers that only the gateway sets; a client's are dropped.
_PLATFORM_HEADER_PREFIXES = ("x-souk-", "x-forwarded-")

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
            connector=tcp_connector(limit=512, limit_per_host=128),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trace_configs=[client_tracing()],
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def match(self, path: str) -> Route | None:
        return next((route for route in self.routes if route.matches(path)), None)

    def _internal(self, upstream_path: str) -> bool:
        seen = _normalised(upstream_path.split("?", 1)[0])
        return seen in self.settings.internal_paths or any(
            (seen + "/").startswith(prefix) for prefix in self.settings.internal_prefixes
        )

    def route_for(self, request: Request) -> Route:
        """The route serving this request; a 404 problem if none may."""
        path = request.url.path
        route = self.match(path)
        # The route matched the decoded path; the upstream gets the path as the client encoded
        # it. A prefix written with escapes (/api/%63atalog) has no clean remainder: refuse it.
        if (
            route is None
            or not route.matches(_raw_path(request))
            or self._internal(route.upstream_path(_raw_path(request)))
        ):
            raise ProblemError(404, "no-route", "No route", f"No service serves {path}")
        return route

    async def forward(self, request: Request, route: Route, token: AccessToken | None) -> Response:
        """Send the request on to an instance of the route's upstream and pass the answer back."""
        upstream_path = route.upstream_path(_raw_path(request))
        body_limit = route.max_body_bytes or self.settings.max_body_bytes
        outbound = _Outbound(
            method=request.method,
            path_and_query=upstream_path + (f"?{request.url.query}" if request.url.query else ""),
            headers=self._upstream_headers(request, route, token),
            body=await self._read_body(request, body_limit),
        )
        forwarded_prefix = route.forwarded_prefix()
        if forwarded_prefix:
            outbound.headers[FORWARDED_PREFIX_HEADER] = forwarded_prefix
        balancer = self.balancers[route.upstream]
        # The request's deadline is the route's timeout (or less, if the client asked for
        # less): it travels with every hop behind the gateway, which bound their work by it.
        with deadline.within(route.timeout):
            return await self._first_answer(route, balancer, outbound)

    async def _first_answer(
        self, route: Route, balancer: RoundRobin, outbound: _Outbound
    ) -> Response:
        for base in balancer.candidates():
            outbound.headers.update(deadline.outbound_header())
            try:
                response = await self._attempt(route, base, outbound)
            except _InstanceFailedError:
                balancer.eject(base)
                continue
            balancer.restore(base)
            return response
        raise ProblemError(
            503,
            "upstream-unavailable",
            "Service Unavailable",
            f"No instance of {route.upstream} is reachable",
            headers={"Retry-After": "1"},
        )

    async def _attempt(self, route: Route, base: str, outbound: _Outbound) -> Response:
        """Send the request to one instance; _InstanceFailedError when the next may be tried."""
        timeout = aiohttp.ClientTimeout(
            total=route.timeout, sock_connect=self.settings.connect_timeout
        )
        safe_to_repeat = outbound.method in _IDEMPOTENT
        try:
            upstream = await self.client.request(
                outbound.method,
                URL(f"{base}{outbound.path_and_query}", encoded=True),
                headers=outbound.headers,
                data=outbound.body,
                allow_redirects=False,
                timeout=timeout,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Nothing reached the instance: any method may go to the next one.
            _log.warning("upstream refused", upstream=route.upstream, url=base, error=str(exc))
            raise _InstanceFailedError from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            _log.warning("upstream dropped the request", upstream=route.upstream, url=base)
            if safe_to_repeat:
                raise _InstanceFailedError from exc
            raise _dropped(route) from exc
        except TimeoutError as exc:
            raise _timed_out(route) from exc
        if not _buffered(upstream):
            return self._downstream_response(upstream)
        # A small body is read whole before answering, so an instance that dies between its
        # headers and its body can still be retried instead of truncating the reply.
        try:
            body = await upstream.read()
        except (aiohttp.ClientPayloadError, aiohttp.ClientOSError) as exc:
            _log.warning("upstream died mid-answer", upstream=route.upstream, url=base)
            if safe_to_repeat:
                raise _InstanceFailedError from exc
            raise _dropped(route) from exc
        except TimeoutError as exc:
            raise _timed_out(route) from exc
        finally:
            upstream.release()
        response = Response(body, status_code=upstream.status)
        response.raw_headers = _downstream_headers(upstream)
        return response

    @property
    def client(self) -> aiohttp.ClientSession:
        """The one pooled session to the upstreams (the OpenAPI document is fetched on it too)."""
        if self._session is None:
            raise RuntimeError("the proxy was not started")
        return self._session

    @staticmethod
    async def _read_body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise _too_large(limit)
        return bytes(body)

    @staticmethod
    def _upstream_headers(
        request: Request, route: Route, token: AccessToken | None
    ) -> CIMultiDict[str]:
        dropped = _HOP_BY_HOP | _named_in_connection(request.headers.getlist("connection"))
        dropped |= {"traceparent", "tracestate", "forwarded"}
        if not route.forward_authorization:
            dropped |= {"authorization"}
        # Only the platform speaks in these: a client's X-Souk-Subject or X-Forwarded-Prefix
        # would otherwise be believed by the services behind the gateway.
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name not in dropped and not name.startswith(_PLATFORM_HEADER_PREFIXES)
        )
        # The client's address and scheme as uvicorn saw them: it already took them from
        # X-Forwarded-* of trusted proxies (forwarded_allow_ips) and ignored everyone else's.
        headers["x-forwarded-for"] = client_address(request)
        headers["x-forwarded-proto"] = request.url.scheme
        headers["x-forwarded-host"] = request.headers.get("host", "")
        headers.update(outbound_headers())
        if token is not None:
            headers.update(caller_headers(token))
        return headers

    @staticmethod
    def _downstream_response(upstream: aiohttp.ClientResponse) -> Response:
        raw_headers = _downstream_headers(upstream)

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


@dataclass
class _Outbound:
    """The request as it goes to whichever instance is tried."""

    method: str
    path_and_query: str
    headers: CIMultiDict[str]
    body: bytes


class _InstanceFailedError(Exception):
    """This instance failed in a way that lets the request go to the next one."""


def _dropped(route: Route) -> ProblemError:
    return ProblemError(
        502, "upstream-failed", "Bad Gateway", f"{route.upstream} dropped the request"
    )


def _timed_out(route: Route) -> ProblemError:
    return ProblemError(
        504,
        "upstream-timeout",
        "Gateway Timeout",
        f"{route.upstream} did not answer within {route.timeout}s",
    )


def _buffered(upstream: aiohttp.ClientResponse) -> bool:
    length = upstream.content_length
    return length is not None and length <= BUFFERED_BODY_LIMIT


def _downstream_headers(upstream: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
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
    return raw_headers


def _named_in_connection(values: list[str]) -> set[str]:
    """Headers that a ``Connection`` header declares hop-by-hop (RFC 9110 §7.6.1)."""
    return {token.strip().lower() for value in values for token in value.split(",") if token}


def client_address(request: Request) -> str:
    """The address of the client, as seen by the gateway or told by a trusted proxy."""
    return request.client.host if request.client else ""


def _raw_path(request: Request) -> str:
    return str((request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1"))


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
