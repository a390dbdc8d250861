"""Bearer tokens at the edge: who is calling, and may they use this route (RFC 6750).

The types and the 401/403/503 answers are the chassis's, so a refused token reads the same
from the gateway as from the service behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis.auth import (
    AccessToken,
    AccessTokenValidator,
    InvalidTokenError,
    KeysUnavailableError,
    customer_required_problem,
    insufficient_scope_problem,
    is_customer,
    keys_unavailable_problem,
    unauthorized_problem,
)

if TYPE_CHECKING:
    from starlette.datastructures import Headers

    from gateway.settings import Route

# Set by the gateway alone (whatever a client sends under X-Souk-* is dropped): the
# services may read them, but validate the forwarded Authorization header themselves.
SUBJECT_HEADER = "x-souk-subject"
CLIENT_HEADER = "x-souk-client"
SCOPES_HEADER = "x-souk-scopes"


async def authenticate(
    headers: Headers, route: Route, validator: AccessTokenValidator
) -> AccessToken:
    """The token of a route that needs one; 401 without a valid one, 403 lacking scope."""
    token = _bearer_token(headers.get("authorization"))
    if token is None:
        raise unauthorized_problem()
    try:
        access_token = await validator.validate(token)
    except InvalidTokenError as error:
        raise unauthorized_problem(error) from None
    except KeysUnavailableError:
        # The token may well be fine: a 401 would make clients throw it away.
        raise keys_unavailable_problem() from None
    required = frozenset(route.scopes)
    if not access_token.grants(*required):
        raise insufficient_scope_problem(required)
    if route.subject == "customer" and not is_customer(access_token):
        raise customer_required_problem()
    return access_token


def caller_headers(token: AccessToken) -> dict[str, str]:
    """The platform's headers that tell an upstream who the gateway found calling."""
    headers = {
        SUBJECT_HEADER: token.subject,
        SCOPES_HEADER: " ".join(sorted(token.scopes)),
    }
    if token.client_id is not None:
        headers[CLIENT_HEADER] = token.client_id
    return headers


def _bearer_token(authorization: str | None) -> str | None:
    # Any other scheme (Basic, a bare token) counts as no token: the answer is the challenge.
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token
