"""A process's outbound connections: made at start-up, inside the running event loop, and
all closed at shutdown, in the reverse order, whatever was made.

``connections = Connections()`` in the composition root; in the lifespan,
``session = connections.http_session()``, ``channel = connections.grpc_channel(urls)`` (or
``connections.grpc_upstream(name, urls, ...)``),
``tokens = connections.client_credentials(settings, ...)``; ``await connections.close()``
on the way out.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from chassis.auth import client_credentials_for
from chassis.tracing import client_tracing

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    import grpc

    from chassis.auth import ClientCredentials
    from chassis.grpc import GrpcUpstream
    from chassis.resilience import Resilience
    from chassis.settings import ServiceSettings


IDLE_CONNECTION_SECONDS: Final = 4.0
"""How long a pooled HTTP connection may idle before the client lets it go. Souk's servers
close one idle for ``keep_alive_timeout`` (5 s by default, ``chassis.settings``); aiohttp
keeps one 15 s by default, so a request could be written on a connection the server was
closing at that moment: it fails with "Server disconnected", and a POST cannot be retried
(the gateway answered 502 "orders dropped the request" under load). The client must let
go first."""


def tcp_connector(**options: Any) -> aiohttp.TCPConnector:
    """A connection pool whose idle connections go before the server's keep-alive ends."""
    return aiohttp.TCPConnector(keepalive_timeout=IDLE_CONNECTION_SECONDS, **options)


def http_session() -> aiohttp.ClientSession:
    """An aiohttp session that keeps no cookies (calls carry their own credentials), traced,
    on a `tcp_connector`. The caller closes it (`Connections.http_session` does)."""
    return aiohttp.ClientSession(
        connector=tcp_connector(),
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=[client_tracing()],
    )


class Connections:
    """What a process opened to talk to others: HTTP sessions, gRPC channels, token sources."""

    def __init__(self) -> None:
        self._opened = contextlib.AsyncExitStack()

    def http_session(self) -> aiohttp.ClientSession:
        """An aiohttp session that keeps no cookies (calls carry their own credentials)."""
        session = http_session()
        self._opened.push_async_callback(session.close)
        return session

    def grpc_channel(self, urls: Sequence[str]) -> grpc.aio.Channel:
        """A gRPC channel to every replica in ``urls``, round robin (``chassis.grpc``)."""
        from chassis.grpc import channel_for  # noqa: PLC0415 - gRPC only where a process uses it

        channel = channel_for(urls)
        self._opened.push_async_callback(channel.close)
        return channel

    def grpc_upstream(
        self, name: str, urls: Sequence[str], *, timeout: float, resilience: Resilience | None
    ) -> GrpcUpstream:
        """A channel per replica in ``urls``, each behind its own breaker and bulkhead in
        ``resilience`` (``chassis.grpc.GrpcUpstream``)."""
        from chassis.grpc import GrpcUpstream  # noqa: PLC0415 - gRPC only where a process uses it

        upstream = GrpcUpstream(name, urls, timeout=timeout, resilience=resilience)
        self._opened.push_async_callback(upstream.close)
        return upstream

    def client_credentials(
        self, settings: ServiceSettings, *, client_id: str, secret: str, scopes: Collection[str]
    ) -> ClientCredentials:
        """This process's own access tokens from identity (``chassis.auth``)."""
        tokens = client_credentials_for(settings, client_id=client_id, secret=secret, scopes=scopes)
        self._opened.push_async_callback(tokens.close)
        return tokens

    async def close(self) -> None:
        """Close everything opened, last first; the connections may be opened again after."""
        await self._opened.aclose()
        self._opened = contextlib.AsyncExitStack()
