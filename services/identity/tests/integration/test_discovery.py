"""Discovery metadata and the published signing keys, through a key rotation."""

# ruff: noqa: S105 - token fields and secrets in tests are fixtures, not credentials

from __future__ import annotations

from typing import TYPE_CHECKING

from joserfc import jws

from .conftest import CLI, token
from .validation import published_keys, validated_claims

if TYPE_CHECKING:
    import httpx

    from .conftest import Clock


async def access_token(identity: httpx.AsyncClient) -> str:
    response = await token(identity, CLI, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


def kid_of(access_token: str) -> str:
    kid: str = jws.extract_compact(access_token.encode()).headers()["kid"]
    return kid


async def rotate(identity: httpx.AsyncClient) -> dict[str, str]:
    response = await identity.post("/internal/keys/rotate")
    assert response.status_code == 200, response.text
    kids: dict[str, str] = response.json()
    return kids


async def published_kids(identity: httpx.AsyncClient) -> list[str]:
    jwks = (await identity.get("/.well-known/jwks.json")).json()
    return [key["kid"] for key in jwks["keys"]]


async def test_discovery_names_every_endpoint_under_the_issuer(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == "http://souk.test"
    assert metadata["authorization_endpoint"] == "http://souk.test/oauth/authorize"
    assert metadata["token_endpoint"] == "http://souk.test/oauth/token"
    assert metadata["revocation_endpoint"] == "http://souk.test/oauth/revoke"
    assert metadata["jwks_uri"] == "http://souk.test/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
    ]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert "orders:read" in metadata["scopes_supported"]


async def test_the_jwks_holds_public_keys_only_each_with_kid_alg_and_use(
    identity: httpx.AsyncClient,
) -> None:
    jwks = (await identity.get("/.well-known/jwks.json")).json()

    assert len(jwks["keys"]) == 2  # the signing key and the next one
    for key in jwks["keys"]:
        assert key["kid"]
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert key["kty"] == "EC"
        assert "d" not in key


async def test_the_next_key_is_published_before_it_signs(identity: httpx.AsyncClient) -> None:
    before = await published_kids(identity)

    kids = await rotate(identity)
    signer_now = kid_of(await access_token(identity))

    assert signer_now == kids["signing"]
    assert signer_now in before
    assert kids["next"] in await published_kids(identity)


async def test_tokens_from_before_and_after_rotations_all_validate_against_the_jwks(
    identity: httpx.AsyncClient,
) -> None:
    tokens = [await access_token(identity)]
    for _ in range(2):
        await rotate(identity)
        tokens.append(await access_token(identity))

    keys = await published_keys(identity)
    for issued in tokens:
        assert validated_claims(issued, keys)["sub"] == "souk-cli"
    assert len({kid_of(issued) for issued in tokens}) == 3


async def test_a_retired_key_leaves_the_jwks_once_its_tokens_have_expired(
    identity: httpx.AsyncClient, clock: Clock
) -> None:
    retired = kid_of(await access_token(identity))
    await rotate(identity)
    assert retired in await published_kids(identity)

    clock.advance(600 + 60 + 1)  # the access token's life and the JWKS leeway

    assert retired not in await published_kids(identity)
