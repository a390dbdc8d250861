"""Liveness and readiness probes (`/healthz`, `/readyz`) over plain asyncio sockets."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from chassis.trace_context import unsampled_traceparent
from souk.plan import HOST
from souk.state import Health

PROBE_TIMEOUT = 1.0
_MAX_RESPONSE = 64 * 1024


async def http_status(
    port: int, path: str, host: str = HOST, socket: str | None = None
) -> int | None:
    """The HTTP status of `GET path` on host:port (or on the Unix socket ``socket``, where an
    instance behind its mesh sidecar listens), or None if there is no answer.

    The probe asks not to be traced: probing every instance every second, traced, was most
    of what an idle Souk exported to the console (two spans a second per instance).
    """
    authority = "localhost" if socket else f"{host}:{port}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n"
        f"traceparent: {unsampled_traceparent()}\r\n\r\n"
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            if socket:
                reader, writer = await asyncio.open_unix_connection(socket)
            else:
                reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request.encode("ascii"))
                await writer.drain()
                response = b""
                # Read to the end (up to _MAX_RESPONSE): no server writes into a closed socket.
                while chunk := await reader.read(_MAX_RESPONSE):
                    response += chunk
                    if len(response) >= _MAX_RESPONSE:
                        break
            finally:
                writer.close()
                with suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError):
        return None
    status_line = response.split(b"\r\n", 1)[0].split()
    if len(status_line) >= 2 and status_line[0].startswith(b"HTTP/") and status_line[1].isdigit():
        return int(status_line[1])
    return None


async def probe_readiness(port: int, host: str = HOST, socket: str | None = None) -> Health:
    """One `/readyz` probe: ok on 200, unready on any other answer, down on none."""
    status = await http_status(port, "/readyz", host, socket)
    if status is None:
        return Health.DOWN
    return Health.OK if status == 200 else Health.UNREADY


async def probe_health(port: int, host: str = HOST, socket: str | None = None) -> Health:
    """ok when live and ready, unready when only live, down when not live.

    A ready instance is live: `/readyz` alone decides the usual case, and `/healthz` is
    asked only when it does not say ready (one request a probe instead of two).
    """
    if await probe_readiness(port, host, socket) is Health.OK:
        return Health.OK
    if await http_status(port, "/healthz", host, socket) != 200:
        return Health.DOWN
    return Health.UNREADY


async def probe_all(addresses: list[tuple[str, int, str | None]]) -> list[Health]:
    """Probe several instances (host, port, Unix socket or None) at once."""
    return list(
        await asyncio.gather(
            *(probe_health(port, host, socket) for host, port, socket in addresses)
        )
    )
