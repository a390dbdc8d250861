"""The FastAPI glue: ``require_scopes`` next to a route, and the problems it answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chassis.auth.keys import KeysUnavailableError
from chassis.auth.tokens import AccessToken, AccessTokenValidator, InvalidTokenError
from chassis.problems import ProblemError


def unauthorized_problem(error: InvalidTokenError | None = None) -> ProblemError:
    """The 401 for a request without a token (``error`` None) or with a refused one (RFC 6750)."""
    if error is None:
        return ProblemError(
            401,
            "unauthorized",
            "Unauthorized",
            "This route needs an access token: send Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return ProblemError(
        401,
        "invalid-token",
        "Unauthorized",
        error.description,
        headers={
            "WWW-Authenticate": (
                f'Bearer error="invalid_token", error_description="{error.description}"'
            )
        },
        reason=str(error.reason),
    )


def insufficient_scope_problem(required: frozenset[str]) -> ProblemError:
    """The 403 for a valid token that lacks a scope the route requires (RFC 6750)."""
    scope = " ".join(sorted(required))
    return ProblemError(
        403,
        "insufficient-scope",
        "Forbidden",
        f"This route needs the scope(s): {scope}.",
        headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        required_scopes=sorted(required),
    )


def customer_required_problem() -> ProblemError:
    """The 403 for a valid token that no customer signed in for (client credentials)."""
    return ProblemError(
        403,
        "customer-required",
        "Forbidden",
        "This route acts for a signed-in customer; a client's own token is not one.",
    )


def keys_unavailable_problem() -> ProblemError:
    """The 503 while the issuer's keys cannot be fetched: the token may well be fine."""
    return ProblemError(
        503,
        "token-keys-unavailable",
        "Service Unavailable",
        "The issuer's signing keys cannot be fetched just now; try again shortly.",
        headers={"Retry-After": "1"},
    )


_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT")


async def _access_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessToken:
    if credentials is None:
        raise unauthorized_problem()
    validator: AccessTokenValidator = request.app.state.token_validator
    try:
        return await validator.validate(credentials.credentials)
    except InvalidTokenError as error:
        raise unauthorized_problem(error) from None
    except KeysUnavailableError:
        raise keys_unavailable_problem() from None


def require_scopes(*scopes: str) -> params.Depends:
    """A dependency that answers 401/403 unless the bearer token grants every one of ``scopes``.

    Declare it next to the route: ``token: Annotated[AccessToken, require_scopes("orders:write")]``
    or ``dependencies=[require_scopes("orders:write")]``.
    """
    required = frozenset(scopes)

    async def scoped_access_token(
        token: Annotated[AccessToken, Depends(_access_token)],
    ) -> AccessToken:
        if not token.grants(*required):
            raise insufficient_scope_problem(required)
        return token

    return params.Depends(scoped_access_token)
