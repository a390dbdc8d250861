"""How a resource server checks identity's access tokens: against the published JWKS only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.jwk import KeySet

if TYPE_CHECKING:
    import httpx

ISSUER = "http://souk.test"


async def published_keys(identity: httpx.AsyncClient) -> KeySet:
    response = await identity.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    return KeySet.import_key_set(response.json())


def validated_claims(access_token: str, keys: KeySet) -> dict[str, Any]:
    """The token's claims, once its signature, issuer, audience and times check out."""
    token = jwt.decode(access_token, keys, algorithms=["ES256"])
    assert token.header["typ"] == "at+jwt"
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": "souk"},
        exp={"essential": True},
        nbf={"essential": True},
        sub={"essential": True},
        jti={"essential": True},
    )
    registry.validate(token.claims)
    return dict(token.claims)
