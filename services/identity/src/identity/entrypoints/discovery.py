"""Discovery metadata, the public signing keys; key rotation and revoked grants (internal)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from chassis.etags import conditional_json
from identity.domain.model import KeyState
from identity.entrypoints.deps import IdentityDep
from identity.entrypoints.schemas import RevokedGrants, SigningKeysRotated
from identity.service_layer import keys

router = APIRouter(tags=["discovery"])

# Validators refetch on an unknown kid, and the next key is published a rotation ahead:
# a few minutes of caching costs nothing.
JWKS_CACHE_CONTROL = "public, max-age=300"


@router.get(
    "/.well-known/openid-configuration",
    summary="The authorization server's metadata (RFC 8414)",
)
async def openid_configuration(identity: IdentityDep) -> dict[str, Any]:
    settings = identity.settings
    issuer = settings.issuer.rstrip("/")
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": settings.scopes,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "authorization_response_iss_parameter_supported": True,
    }


@router.get("/.well-known/jwks.json", summary="The public keys that sign access tokens")
async def jwks(identity: IdentityDep) -> JSONResponse:
    published = await keys.published_keys(
        identity.uow(), identity.signer, identity.clock(), identity.retired_keys_kept
    )
    return JSONResponse({"keys": published}, headers={"Cache-Control": JWKS_CACHE_CONTROL})


@router.post(
    "/internal/keys/rotate",
    response_model=SigningKeysRotated,
    summary="Start signing with the next key and publish a new next key (the gateway hides it)",
)
async def rotate(identity: IdentityDep) -> SigningKeysRotated:
    rotated = await keys.rotate_keys(identity.uow(), identity.signer, identity.clock())
    kid = {key.state: key.kid for key in rotated if key.state is not KeyState.RETIRED}
    return SigningKeysRotated(signing=kid[KeyState.ACTIVE], next=kid[KeyState.NEXT])


@router.get(
    "/internal/revocations",
    response_model=RevokedGrants,
    responses={304: {"description": "Not modified (If-None-Match)"}},
    summary="The grants revoked while tokens issued from them may still live (the gateway "
    "hides it)",
)
async def revocations(request: Request, identity: IdentityDep) -> Response:
    # Every validator (gateway, services) asks for this list every few seconds while it is
    # busy: a conditional request answered 304 costs one small query.
    grants = await identity.server.revoked_grants(identity.retired_keys_kept)
    return conditional_json(request, RevokedGrants(grants=grants).model_dump(mode="json"))
