"""Access tokens: validate a signed JWT against its issuer's JWKS; require scopes on routes.

A service never relies on the gateway alone: every route that needs a caller declares
``require_scopes(...)`` next to itself, and the composition root puts a
:class:`TokenValidator` (or anything else that is an :class:`AccessTokenValidator`) on
``app.state.token_validator``. The gateway checks tokens with the same types and answers.

One module per concern, each importing only those below it:

- :mod:`~chassis.auth.routes`: the FastAPI glue, ``require_scopes`` and the 401/403/503
  problems;
- :mod:`~chassis.auth.tokens`: what a token grants, why one is refused, the validator;
- :mod:`~chassis.auth.keys` and :mod:`~chassis.auth.revocations`: the issuer's signing keys
  and its list of revoked grants, each fetched over HTTP and cached;
- :mod:`~chassis.auth.client_credentials`: this process's own token, for its own calls;
- :mod:`~chassis.auth.refresh`: one shared fetch at a time, with a back-off.

Import from ``chassis.auth``; the modules are its inside.
"""

from chassis.auth.client_credentials import (
    TOKEN_PATH,
    AccessTokenSource,
    ClientCredentials,
    TokenUnavailableError,
    client_credentials_for,
)
from chassis.auth.keys import IssuerKeys, KeysUnavailableError, PublicKey
from chassis.auth.revocations import Revocations
from chassis.auth.routes import (
    customer_required_problem,
    insufficient_scope_problem,
    keys_unavailable_problem,
    require_scopes,
    unauthorized_problem,
)
from chassis.auth.tokens import (
    ACCESS_TOKEN_TYPES,
    ALLOWED_ALGORITHMS,
    VERIFIED_TOKENS_KEPT,
    AccessToken,
    AccessTokenValidator,
    InvalidTokenError,
    Rejection,
    TokenValidator,
    is_customer,
    issuer_validator,
)

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "ALLOWED_ALGORITHMS",
    "TOKEN_PATH",
    "VERIFIED_TOKENS_KEPT",
    "AccessToken",
    "AccessTokenSource",
    "AccessTokenValidator",
    "ClientCredentials",
    "InvalidTokenError",
    "IssuerKeys",
    "KeysUnavailableError",
    "PublicKey",
    "Rejection",
    "Revocations",
    "TokenUnavailableError",
    "TokenValidator",
    "client_credentials_for",
    "customer_required_problem",
    "insufficient_scope_problem",
    "is_customer",
    "issuer_validator",
    "keys_unavailable_problem",
    "require_scopes",
    "unauthorized_problem",
]
