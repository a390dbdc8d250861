"""The gateway checks tokens against the keys identity publishes, fetched over real HTTP."""

from __future__ import annotations

import time
import uuid

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import OKPKey

from gateway.app import create_app

ISSUER = "http://127.0.0.1:8080"
AUDIENCE = "souk"

# Issuers publish Ed25519 keys under RFC 8037's "EdDSA"; joserfc nudges towards RFC 9864 names.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")


@pytest.fixture
def signing_key():
    return OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})


@pytest.fixture
async def identity(signing_key):
    """A stand-in identity instance that serves only its JWKS, on a loopback port."""

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [signing_key.as_dict(private=False)]})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def signed(key, **overrides):
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "customer-amira",
        "aud": AUDIENCE,
        "client_id": "storefront",
        "scope": "orders:read orders:write",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return jwt.encode(
        {"alg": "EdDSA", "kid": key.kid, "typ": "at+jwt"}, claims, key, algorithms=["EdDSA"]
    )


def issuer_settings(kit, upstreams, identity_url):
    orders = kit.Route(
        prefix="/api/echo", upstream="echo", auth="required", scopes=("orders:write",)
    )
    return kit.settings(
        upstreams,
        upstreams={"echo": upstreams, "identity": [identity_url]},
        routes=[orders],
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )


def bearer(token):
    return {"authorization": f"Bearer {token}"}


async def test_a_token_signed_with_the_published_key_reaches_the_upstream(
    kit, upstreams, identity, signing_key
):
    async with kit.client(issuer_settings(kit, upstreams, identity)) as client:
        response = await client.post("/api/echo/orders", headers=bearer(signed(signing_key)))
    assert response.status_code == 200
    seen = response.json()["headers"]
    assert (seen["x-souk-subject"], seen["x-souk-client"]) == ("customer-amira", "storefront")


async def test_a_token_forged_with_another_key_under_the_same_kid_is_401(kit, upstreams, identity):
    forger = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
    async with kit.client(issuer_settings(kit, upstreams, identity)) as client:
        response = await client.post("/api/echo/orders", headers=bearer(signed(forger)))
    assert response.status_code == 401
    assert response.json()["reason"] == "bad-signature"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_token_for_another_audience_is_401(kit, upstreams, identity, signing_key):
    token = signed(signing_key, aud="another-platform")
    async with kit.client(issuer_settings(kit, upstreams, identity)) as client:
        response = await client.post("/api/echo/orders", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["reason"] == "wrong-audience"


async def test_a_valid_token_lacking_the_routes_scope_is_403(kit, upstreams, identity, signing_key):
    token = signed(signing_key, scope="orders:read")
    async with kit.client(issuer_settings(kit, upstreams, identity)) as client:
        response = await client.post("/api/echo/orders", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["orders:write"]


async def test_while_identity_is_unreachable_a_token_is_503_with_retry_after_not_401(
    kit, upstreams, signing_key
):
    settings = issuer_settings(kit, upstreams, f"http://127.0.0.1:{kit.free_port()}")
    async with kit.client(settings) as client:
        response = await client.post("/api/echo/orders", headers=bearer(signed(signing_key)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "https://souk.dev/problems/token-keys-unavailable"


async def test_the_validator_built_at_start_up_is_closed_at_shutdown(
    kit, upstreams, identity, signing_key
):
    app = create_app(issuer_settings(kit, upstreams, identity))
    async with app.router.lifespan_context(app):
        validator = app.state.token_validator
        await validator.validate(signed(signing_key))
    # No public sign of a closed session: an open one would leak a connection pool.
    assert validator.keys._session is None
