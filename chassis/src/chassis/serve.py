"""Serve an app with uvicorn: graceful, bounded shutdown on SIGTERM, start-up failures fatal."""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    import asyncio
    from types import FrameType

    from fastapi import FastAPI

    from chassis.health import Readiness

from chassis import private_socket
from chassis.logs import get_logger
from chassis.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)

EXIT_STARTUP_FAILED = 3
_log = get_logger("chassis.serve")


class _DrainingServer(uvicorn.Server):
    """Flips readiness to "draining" the moment a stop signal arrives.

    uvicorn's main loop wakes every 0.1 s to see whether it should stop (and refreshes the
    ``Date`` header every tenth time): ten wake-ups a second in every idle process. This one
    wakes once a second, for the header, and at once on a stop signal.
    """

    tick_seconds = 1.0

    def __init__(self, config: uvicorn.Config, readiness: Readiness) -> None:
        super().__init__(config)
        self.readiness = readiness
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.readiness.draining = True
        super().handle_exit(sig, frame)
        if self._loop is not None and self._stopping is not None:
            # A signal handler runs between two bytecodes of the loop's thread: hand the wake-up
            # to the loop rather than set the event from under it.
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        ticks = 0
        # uvicorn counts ticks of 0.1 s: each pass here is ten of them (a second).
        while not await self.on_tick(ticks):
            ticks = (ticks + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_seconds):
                    await self._stopping.wait()


class _HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers are not all in
    within ``header_timeout`` seconds of the request's first byte (of the connection, before
    any byte): uvicorn bounds only the idle time between requests, so a client sending its
    headers a byte at a time (or never) held a connection and its memory for good."""

    header_timeout: float = 5.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def _protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    return type(
        "HeaderDeadlineProtocol", (_HeaderDeadlineProtocol,), {"header_timeout": header_timeout}
    )


def _already_handled(signum: int, frame: FrameType | None) -> None:
    """The stop signal was acted on by the server; nothing is left to do."""


def server_config(app: FastAPI, settings: ServiceSettings) -> uvicorn.Config:
    """How uvicorn serves ``app``: Souk's logs instead of its own, a bounded drain, and the
    client address of a request taken from ``X-Forwarded-For`` only when the connection
    comes from one of ``settings.forwarded_allow_ips``."""
    trusted: list[str] | str = list(settings.forwarded_allow_ips)
    if settings.uds is not None and trusted:
        # On a private Unix socket the one peer is the instance's own sidecar (uvicorn sees no
        # client address there to match): its X-Forwarded-For is believed, as the loopback
        # proxy's was before; the sidecar passes the caller's header on unchanged.
        trusted = "*"
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        http=_protocol(settings.header_timeout),
        timeout_keep_alive=math.ceil(settings.keep_alive_timeout),
    )


def run(create_app: Callable[[S], FastAPI], settings: S) -> None:
    """Run ``create_app(settings)`` until SIGTERM/SIGINT; exit non-zero if start-up fails.

    On a stop signal uvicorn stops accepting connections, lets in-flight requests finish
    for up to ``settings.shutdown_timeout`` seconds, then runs the app's shutdown hooks.
    """
    app = create_app(settings)
    if settings.migrate == "only":
        asyncio.run(migrate_only(app, settings))
        return
    server = _DrainingServer(server_config(app, settings), app.state.readiness)
    # With the mesh on, no TCP port: a Unix socket only this user (the sidecar) reaches.
    sockets = [private_socket.bind(settings.uds)] if settings.uds is not None else None
    # uvicorn hands a caught SIGTERM/SIGINT back to the previous handler once it has drained;
    # with the default handler the process would die by the signal (exit 143) after a clean
    # shutdown. The stop was already handled, so the previous handler does nothing.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, _already_handled)
    try:
        if sockets is None:
            server.run()
        else:
            server.run(sockets=sockets)
    finally:
        if settings.uds is not None:
            settings.uds.unlink(missing_ok=True)
    if not server.started:
        sys.exit(EXIT_STARTUP_FAILED)


async def migrate_only(app: FastAPI, settings: ServiceSettings) -> None:
    """Upgrade the app's schema to the newest revision and return (a migration Job's run)."""
    migrations = app.state.migrations
    if migrations is None:
        _log.info("nothing to migrate")
        return
    from chassis.db import Database  # noqa: PLC0415 - only a process with a database loads it

    database = Database(settings.database_url_or_default(), migrations=migrations)
    try:
        await database.migrate()
        _log.info("migrated", revision=database.head_revision())
    finally:
        await database.dispose()
