"""A service's own access token: fetched by client credentials, cached, refreshed once."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from chassis import ServiceSettings
from chassis.auth import ClientCredentials, TokenUnavailableError, client_credentials_for

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SECRET = "orders-test-secret"  # noqa: S105 - the stand-in identity's, for these tests only


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StandInIdentity:
    """A token endpoint that knows one client, counts its requests and can be told to wait."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.expires_in = 600
        self.delay = 0.0
        self.url = ""

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.requests.append(
            {"form": dict(form), "authorization": request.headers.get("Authorization")}
        )
        await asyncio.sleep(self.delay)
        if request.headers.get("Authorization") != basic("orders", SECRET):
            return web.json_response(
                {"error": "invalid_client", "error_description": "client authentication failed"},
                status=401,
            )
        return web.json_response(
            {
                "access_token": f"token-{len(self.requests)}",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": form["scope"],
            }
        )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
async def identity() -> AsyncIterator[StandInIdentity]:
    identity = StandInIdentity()
    app = web.Application()
    app.router.add_post("/oauth/token", identity.token)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    identity.url = str(server.make_url(""))
    yield identity
    await server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def orders_tokens(
    identity: StandInIdentity, clock: Clock
) -> AsyncIterator[ClientCredentials]:
    tokens = ClientCredentials(
        f"{identity.url}/oauth/token",
        "orders",
        SECRET,
        ["stock:write", "payments:write"],
        clock=clock,
    )
    yield tokens
    await tokens.close()


async def test_the_token_is_asked_of_identity_with_http_basic_and_the_scopes(
    identity: StandInIdentity, orders_tokens: ClientCredentials
) -> None:
    assert await orders_tokens.token() == "token-1"
    [sent] = identity.requests
    assert sent["authorization"] == basic("orders", SECRET)
    assert sent["form"] == {
        "grant_type": "client_credentials",
        "scope": "payments:write stock:write",
    }


def test_a_service_asks_the_token_endpoint_of_its_identity_upstream() -> None:
    settings = ServiceSettings(
        service="orders", upstreams={"identity": ["http://127.0.0.1:8006/", "http://other"]}
    )

    tokens = client_credentials_for(settings, client_id="orders", secret=SECRET, scopes=["x"])

    assert tokens.token_url == "http://127.0.0.1:8006/oauth/token"  # noqa: S105 - a URL


async def test_the_token_is_reused_until_shortly_before_it_expires(
    identity: StandInIdentity, orders_tokens: ClientCredentials, clock: Clock
) -> None:
    first = await orders_tokens.token()
    clock.now += 600 - 61

    assert await orders_tokens.token() == first
    clock.now += 1
    assert await orders_tokens.token() == "token-2"
    assert len(identity.requests) == 2


async def test_a_short_lived_token_is_renewed_half_way_through_its_life(
    identity: StandInIdentity, orders_tokens: ClientCredentials, clock: Clock
) -> None:
    identity.expires_in = 60
    await orders_tokens.token()

    clock.now += 29
    assert await orders_tokens.token() == "token-1"
    clock.now += 1
    assert await orders_tokens.token() == "token-2"


async def test_concurrent_callers_share_one_request_to_identity(
    identity: StandInIdentity, orders_tokens: ClientCredentials
) -> None:
    identity.delay = 0.05

    tokens = await asyncio.gather(*(orders_tokens.token() for _ in range(20)))

    assert set(tokens) == {"token-1"}
    assert len(identity.requests) == 1


async def test_a_refused_client_is_a_clear_lasting_error_that_never_shows_the_secret(
    identity: StandInIdentity,
) -> None:
    tokens = ClientCredentials(f"{identity.url}/oauth/token", "orders", "wrong-secret", ["x"])
    try:
        with pytest.raises(TokenUnavailableError) as refused:
            await tokens.token()
    finally:
        await tokens.close()

    assert not refused.value.transient
    assert "refused client 'orders' a token (invalid_client: client authentication failed)" in str(
        refused.value
    )
    assert "wrong-secret" not in str(refused.value)


async def test_an_identity_that_cannot_be_reached_is_a_passing_failure(
    identity: StandInIdentity,
) -> None:
    tokens = ClientCredentials("http://127.0.0.1:9/oauth/token", "orders", SECRET, ["x"])
    try:
        with pytest.raises(TokenUnavailableError, match="cannot get a token") as failed:
            await tokens.token()
    finally:
        await tokens.close()

    assert failed.value.transient
    assert identity.requests == []
