"""Identity over HTTP, on a migrated SQLite database in tmp_path, with a clock tests move."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from identity.app import create_app
from identity.settings import IdentitySettings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from fastapi import FastAPI

ISSUER = "http://souk.test"
# Each run makes its own secrets, as `souk up` does for each installation.
CLI = ("souk-cli", secrets.token_urlsafe(32))
SERVICE_SECRETS = {"bff-web": secrets.token_urlsafe(32), "orders": secrets.token_urlsafe(32)}
WEB = "souk-web"
WEB_CALLBACK = "http://127.0.0.1:8765/callback"
AMINA = ("amina@example.com", "sesame-opens-the-souk")


class Clock:
    """Now, as identity sees it: real time until a test moves it on."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def identity_app(tmp_path: Path, clock: Clock) -> AsyncIterator[FastAPI]:
    """Identity, started with the demo clients."""
    settings = IdentitySettings(
        data_dir=tmp_path,
        instance="identity-test",
        issuer=ISSUER,
        # The cheapest argon2 parameters: these tests are about flows, not hashing cost.
        password_time_cost=1,
        password_memory_kib=32,
        client_secrets={CLI[0]: CLI[1], **SERVICE_SECRETS},
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def identity(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Identity as an in-process client, from 127.0.0.1."""
    transport = httpx.ASGITransport(app=identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        yield client


@pytest.fixture
async def elsewhere(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Identity as a client at another address sees it."""
    transport = httpx.ASGITransport(app=identity_app, client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
        yield client


@pytest.fixture
async def amina(identity: httpx.AsyncClient) -> str:
    """Amina's account id: she has registered."""
    response = await identity.post("/users", json={"email": AMINA[0], "password": AMINA[1]})
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


class Pkce:
    """A code verifier and its S256 challenge, as a client makes them."""

    def __init__(self) -> None:
        self.verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(self.verifier.encode()).digest()
        self.challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_parameters(pkce: Pkce, **overrides: str) -> dict[str, str]:
    """The parameters souk-web sends to the authorize endpoint."""
    return {
        "response_type": "code",
        "client_id": WEB,
        "redirect_uri": WEB_CALLBACK,
        "scope": "orders:read orders:write",
        "state": "xyz-123",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **overrides,
    }


async def sign_in(
    identity: httpx.AsyncClient,
    pkce: Pkce,
    credentials: tuple[str, str] = AMINA,
    **overrides: str,
) -> httpx.Response:
    """Post the sign-in form of the authorize step, as a person would in a browser."""
    form = {**authorize_parameters(pkce, **overrides)}
    form |= {"email": credentials[0], "password": credentials[1]}
    return await identity.post("/oauth/authorize", data=form)


def redirect_parameters(response: httpx.Response) -> dict[str, str]:
    """The query parameters of the redirect back to the client."""
    assert response.status_code == 302, response.text
    return {
        name: values[0]
        for name, values in parse_qs(urlsplit(response.headers["location"]).query).items()
    }


async def code_for(identity: httpx.AsyncClient, pkce: Pkce) -> str:
    """A fresh authorization code for Amina's consent to souk-web."""
    return redirect_parameters(await sign_in(identity, pkce))["code"]


async def token(
    identity: httpx.AsyncClient, auth: tuple[str, str] | None = None, **form: str
) -> httpx.Response:
    """A call to the token endpoint; without ``auth``, as the public souk-web client."""
    if auth is None:
        form.setdefault("client_id", WEB)
        return await identity.post("/oauth/token", data=form)
    return await identity.post("/oauth/token", data=form, auth=auth)


async def exchange(identity: httpx.AsyncClient, code: str, pkce: Pkce) -> httpx.Response:
    """The token request that redeems ``code``."""
    return await token(
        identity,
        grant_type="authorization_code",
        code=code,
        redirect_uri=WEB_CALLBACK,
        code_verifier=pkce.verifier,
    )


async def tokens_for_amina(identity: httpx.AsyncClient) -> dict[str, Any]:
    """The tokens souk-web holds once Amina has signed in."""
    pkce = Pkce()
    response = await exchange(identity, await code_for(identity, pkce), pkce)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
