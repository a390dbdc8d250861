"""What the OAuth 2 endpoints take and answer, for their OpenAPI document.

They read their forms themselves (RFC 6749 names the parameters, repeats are refused), so
FastAPI cannot see them: this module says it instead. Errors of /oauth/token and
/oauth/revoke are RFC 6749 §5.2 JSON (``error``, ``error_description``); errors before a
client's redirect URI is known good are problem+json; a person gets pages (HTML).
"""

from __future__ import annotations

from typing import Any

from chassis.problems import PROBLEM_MEDIA_TYPE

Spec = dict[str, Any]

_FORM = "application/x-www-form-urlencoded"
_NO_STORE = {
    "Cache-Control": {"description": "no-store", "schema": {"type": "string"}},
}
_OAUTH_ERROR: Spec = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "invalid_scope",
                "unauthorized_client",
                "unsupported_grant_type",
            ],
        },
        "error_description": {"type": "string"},
    },
}
_PROBLEM: Spec = {"$ref": "#/components/schemas/Problem"}
_HTML: Spec = {"text/html": {"schema": {"type": "string"}}}
_BUSY: Spec = {
    "description": "Too many password or secret checks at once; retry after Retry-After.",
    "headers": {"Retry-After": {"schema": {"type": "string"}}},
    "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM}},
}


def _string(description: str, **more: Any) -> Spec:
    return {"type": "string", "minLength": 1, "description": description, **more}


_CLIENT_AUTH = (
    "A confidential client authenticates with HTTP Basic (`client_id:client_secret`, each "
    "form-urlencoded; a `client_secret` in the form is refused); a public client names "
    "itself in `client_id`."
)

TOKEN: Spec = {
    "description": "RFC 6749 §3.2. " + _CLIENT_AUTH + " Every parameter at most once.",
    "requestBody": {
        "required": True,
        "content": {
            _FORM: {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": ["authorization_code", "refresh_token", "client_credentials"],
                        },
                        "client_id": _string("A public client's id (no Basic credentials)."),
                        "code": _string("authorization_code: the code from the redirect."),
                        "redirect_uri": _string(
                            "authorization_code: the redirect_uri the code was asked with."
                        ),
                        "code_verifier": _string(
                            "authorization_code: the PKCE verifier (S256 only).",
                            minLength=43,
                            maxLength=128,
                        ),
                        "refresh_token": _string("refresh_token: the refresh token."),
                        "scope": {
                            "type": "string",
                            "description": "Space-separated scopes, at most the client's "
                            "(or the grant's).",
                        },
                    },
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "The tokens (RFC 6749 §5.1).",
            "headers": _NO_STORE,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["access_token", "token_type", "expires_in", "scope"],
                        "properties": {
                            "access_token": {"type": "string"},
                            "token_type": {"type": "string", "enum": ["Bearer"]},
                            "expires_in": {"type": "integer"},
                            "scope": {"type": "string"},
                            "refresh_token": {"type": "string"},
                        },
                    }
                }
            },
        },
        "400": {
            "description": "RFC 6749 §5.2 error.",
            "content": {"application/json": {"schema": _OAUTH_ERROR}},
        },
        "401": {
            "description": "invalid_client (RFC 6749 §5.2), with a Basic challenge.",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": _OAUTH_ERROR}},
        },
        "503": _BUSY,
    },
}

REVOKE: Spec = {
    "description": "RFC 7009. " + _CLIENT_AUTH + " A refresh token revokes its family; an "
    "access token revokes the grant it names. An unknown token is a 200 too.",
    "requestBody": {
        "required": True,
        "content": {
            _FORM: {
                "schema": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {
                        "token": _string("The refresh or access token to revoke."),
                        "token_type_hint": {
                            "type": "string",
                            "enum": ["refresh_token", "access_token"],
                        },
                        "client_id": _string("A public client's id (no Basic credentials)."),
                    },
                }
            }
        },
    },
    "responses": {
        "200": {"description": "Revoked (or never known).", "headers": _NO_STORE},
        "400": TOKEN["responses"]["400"],
        "401": TOKEN["responses"]["401"],
        "503": _BUSY,
    },
}

_AUTHORIZE_PARAMETERS: list[Spec] = [
    {"name": name, "in": "query", "required": required, "schema": schema}
    for name, required, schema in (
        ("response_type", True, {"type": "string", "enum": ["code"]}),
        ("client_id", True, _string("A registered client.")),
        ("redirect_uri", False, _string("Exactly one of the client's registered URIs.")),
        ("scope", False, {"type": "string"}),
        ("state", False, {"type": "string"}),
        ("code_challenge", True, _string("PKCE: BASE64URL(SHA-256(verifier)).")),
        ("code_challenge_method", True, {"type": "string", "enum": ["S256"]}),
    )
]
_BAD_AUTHORIZATION: Spec = {
    "description": "No known client or redirect URI (or a repeated parameter): nothing to "
    "redirect to safely.",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM}},
}
_TO_CLIENT: Spec = {
    "description": "Back to the client's redirect URI with `code` (or `error`), `state` and "
    "`iss` (RFC 9207).",
    "headers": {"Location": {"schema": {"type": "string"}}},
}

AUTHORIZE: Spec = {
    "description": "RFC 6749 §4.1.1 with PKCE (RFC 7636, S256 only). Every parameter at most "
    "once. A person gets the sign-in page; a bad request the client may hear of is "
    "redirected to it.",
    "parameters": _AUTHORIZE_PARAMETERS,
    "responses": {
        "200": {"description": "The sign-in and consent page.", "content": _HTML},
        "302": _TO_CLIENT,
        "400": _BAD_AUTHORIZATION,
    },
}

SIGN_IN: Spec = {
    "description": "The sign-in page's form: the authorization request's parameters again, "
    "and `email`, `password` and `decision`.",
    "requestBody": {
        "required": True,
        "content": {
            _FORM: {
                "schema": {
                    "type": "object",
                    "properties": {
                        **{
                            parameter["name"]: parameter["schema"]
                            for parameter in _AUTHORIZE_PARAMETERS
                        },
                        "email": {"type": "string"},
                        "password": {"type": "string"},
                        "decision": {"type": "string", "enum": ["allow", "deny"]},
                    },
                    "required": ["response_type", "client_id", "code_challenge"],
                }
            }
        },
    },
    "responses": {
        "302": _TO_CLIENT,
        "400": _BAD_AUTHORIZATION,
        "401": {"description": "Wrong email or password: the page again.", "content": _HTML},
        "429": {
            "description": "Too many misses from this source: the page again, and Retry-After.",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
            "content": _HTML,
        },
        "503": _BUSY,
    },
}
