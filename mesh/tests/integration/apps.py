"""Small applications behind sidecars: an HTTP one whose answers the test sets, a gRPC one
that reports the deadline it was given."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2_grpc

WAIT_METHOD = "/souk.meshtest.v1.Clock/Wait"


@dataclass
class HttpApp:
    """Answers every path with 200 and what it saw, unless told to fail or to be slow."""

    socket: Path
    status: int = 200
    delay: float = 0.0
    hits: int = 0
    callers: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"unix:{self.socket}"

    async def _answer(self, request: web.Request) -> web.Response:
        if request.path != "/readyz":
            self.hits += 1
            self.callers.append(request.headers.get("X-Forwarded-Client-Cert", ""))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = 200 if request.path == "/readyz" else self.status
        return web.json_response({"path": request.path}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.socket)).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _wait_handler() -> grpc.GenericRpcHandler:
    async def wait(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        (seconds,) = struct.unpack("!d", request)
        remaining = context.time_remaining()
        await asyncio.sleep(seconds)
        return struct.pack("!d", -1.0 if remaining is None else remaining)

    return grpc.method_handlers_generic_handler(
        "souk.meshtest.v1.Clock",
        {"Wait": grpc.unary_unary_rpc_method_handler(wait)},
    )


@contextlib.asynccontextmanager
async def grpc_app(socket: Path) -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([_wait_handler()])
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"unix:{socket}")
    await server.start()
    try:
        yield f"unix:{socket}"
    finally:
        await server.stop(grace=None)


async def call_wait(target: str, seconds: float, deadline: float) -> float:
    """Call Wait through ``target`` (host:port); return the deadline the server saw."""
    async with grpc.aio.insecure_channel(target) as channel:
        wait = channel.unary_unary(WAIT_METHOD)
        answer = await wait(struct.pack("!d", seconds), timeout=deadline)
        (remaining,) = struct.unpack("!d", answer)
        return float(remaining)
