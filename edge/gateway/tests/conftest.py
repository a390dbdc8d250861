"""Real upstream servers on loopback for the gateway to route to."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response

import chassis
from chassis.auth import AccessToken, InvalidTokenError, Rejection
from chassis.serve import server_config
from chassis.settings import ServiceSettings
from gateway.app import create_app
from gateway.settings import GatewaySettings, Route


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def echo_app(instance: str) -> FastAPI:
    """An upstream that reports what reached it, and can be slow on request."""
    router = APIRouter()

    @router.api_route("/slow", methods=["GET"])
    async def slow(seconds: float = 2.0) -> dict[str, str]:
        await asyncio.sleep(seconds)
        return {"instance": instance}

    @router.get("/cookies")
    async def cookies() -> Response:
        response = Response("two cookies")
        response.set_cookie("basket", "3")
        response.set_cookie("session", "abc")
        return response

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def echo(request: Request, path: str) -> dict[str, object]:
        return {
            "instance": instance,
            "path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": dict(request.headers),
            "body": (await request.body()).decode(),
        }

    settings = chassis.ServiceSettings(service="echo", instance=instance)
    return chassis.create_app(settings, title="echo", routers=[router])


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, port: int, settings: ServiceSettings | None = None
) -> AsyncIterator[str]:
    """``app`` on a real port; with ``settings``, configured as `souk up` runs it."""
    if settings is None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    else:
        config = server_config(app, settings)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def dropping_server(answer: bytes = b"") -> AsyncIterator[str]:
    """An upstream that reads the request, sends ``answer`` (maybe nothing) and hangs up."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def upstreams() -> AsyncIterator[list[str]]:
    """Two live instances of one upstream service."""
    async with (
        serving(echo_app("echo-1"), _free_port()) as first,
        serving(echo_app("echo-2"), _free_port()) as second,
    ):
        yield [first, second]


def access_token(
    subject: str,
    client_id: str | None,
    scopes: frozenset[str] = frozenset(),
    grant_id: str | None = None,
) -> AccessToken:
    """What a valid token of ``subject`` through ``client_id`` grants, for a few minutes."""
    return AccessToken(
        subject=subject,
        client_id=client_id,
        scopes=scopes,
        token_id=f"jti-{subject}-{client_id}",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
        grant_id=grant_id,
    )


class FakeTokenValidator:
    """Knows a fixed set of tokens; any other token has a bad signature."""

    def __init__(self, tokens: dict[str, AccessToken]) -> None:
        self.tokens = tokens

    async def validate(self, token: str) -> AccessToken:
        try:
            return self.tokens[token]
        except KeyError:
            raise InvalidTokenError(Rejection.BAD_SIGNATURE) from None


@contextlib.asynccontextmanager
async def gateway_client(
    settings: GatewaySettings,
    *,
    base_url: str = "http://gateway",
    client_address: str = "203.0.113.7",
    **options: object,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, **options)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_address, 5555))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def settings_for(urls: list[str], **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {"upstreams": {"echo": urls}, "instance": "gateway-1"}
    values.update(overrides)
    return GatewaySettings(**values)  # type: ignore[arg-type]


class GatewayKit:
    """The gateway tests' helpers as one fixture: test modules cannot import conftest."""

    free_port = staticmethod(_free_port)
    echo_app = staticmethod(echo_app)
    serving = staticmethod(serving)
    client = staticmethod(gateway_client)
    dropping_server = staticmethod(dropping_server)
    settings = staticmethod(settings_for)
    Route = Route
    access_token = staticmethod(access_token)
    FakeTokenValidator = FakeTokenValidator


@pytest.fixture
def kit() -> type[GatewayKit]:
    return GatewayKit
