"""Bearer tokens at the edge: who is calling, and may they use this route (RFC 6750)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chassis import ProblemError

if TYPE_CHECKING:
    from starlette.datastructures import Headers

    from gateway.settings import Route

# Set by the gateway alone (whatever a client sends under X-Souk-* is dropped): the
# services may read them, but validate the forwarded Authorization header themselves.
SUBJECT_HEADER = "x-souk-subject"
CLIENT_HEADER = "x-souk-client"
SCOPES_HEADER = "x-souk-scopes"


@dataclass(frozen=True)
class Caller:
    """Whom a valid access token speaks for: the user (or client), the client, the grants."""

    subject: str
    client_id: str
    scopes: frozenset[str]


class InvalidTokenError(Exception):
    """The token is not one to accept: bad signature, expired, wrong issuer or audience..."""


class TokenValidator(Protocol):
    """Checks an access token; the chassis's validator is plugged in behind this."""

    async def validate(self, token: str) -> Caller:
        """The caller ``token`` speaks for; raises InvalidTokenError if it is not valid."""
        ...


async def authenticate(headers: Headers, route: Route, validator: TokenValidator) -> Caller:
    """The caller of a route that needs a token; 401 without a valid one, 403 lacking scope."""
    token = _bearer_token(headers.get("authorization"))
    if token is None:
        raise ProblemError(
            401,
            "unauthorized",
            "Unauthorized",
            f"{route.prefix} needs a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        caller = await validator.validate(token)
    except InvalidTokenError as exc:
        raise ProblemError(
            401,
            "invalid-token",
            "Unauthorized",
            "The bearer token is not valid",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
    missing = [scope for scope in route.scopes if scope not in caller.scopes]
    if missing:
        needed = " ".join(route.scopes)
        raise ProblemError(
            403,
            "insufficient-scope",
            "Forbidden",
            f"{route.prefix} needs the scopes {needed}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{needed}"'},
        )
    return caller


def caller_headers(caller: Caller) -> dict[str, str]:
    """The platform's headers that tell an upstream who the gateway found calling."""
    return {
        SUBJECT_HEADER: caller.subject,
        CLIENT_HEADER: caller.client_id,
        SCOPES_HEADER: " ".join(sorted(caller.scopes)),
    }


def _bearer_token(authorization: str | None) -> str | None:
    # Any other scheme (Basic, a bare token) counts as no token: the answer is the challenge.
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
