"""The OAuth 2 endpoints: authorize (with its sign-in form), token and revoke.

They speak RFC 6749 rather than problem+json: errors are ``{"error", "error_description"}``
bodies, or, once the client's redirect URI is known good, redirects carrying them.
"""

from __future__ import annotations

import base64
import binascii
import html
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, QueryParams
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from chassis.problems import ProblemError
from identity.domain.errors import (
    InvalidClient,
    InvalidRequest,
    OAuthError,
    UnauthorizedClient,
    UnknownRedirect,
    UnsupportedGrantType,
    WrongCredentials,
)
from identity.domain.model import format_scope, parse_scope
from identity.entrypoints import oauth_docs
from identity.entrypoints.deps import IdentityDep, identity
from identity.service_layer import accounts
from identity.service_layer.throttle import TooManySignInAttempts

if TYPE_CHECKING:
    from identity.domain.model import Client
    from identity.service_layer.oauth import AuthorizationRequest, AuthorizationServer, Tokens
    from identity.settings import IdentitySettings

router = APIRouter(prefix="/oauth", tags=["oauth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# What the consent step tells a person each scope lets the client do.
SCOPE_WORDS = {
    "orders:read": "see your orders",
    "orders:write": "place and cancel orders for you",
    "stock:read": "see stock levels",
}
_PAGE_STYLE = """
body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f1e7;
font:16px/1.5 system-ui,sans-serif;color:#2b2118}
.card{background:#fff;padding:2rem clamp(1rem,6vw,2.5rem);border-radius:12px;
width:min(22rem,92vw);box-sizing:border-box;
box-shadow:0 8px 30px rgba(60,40,20,.12)}
.brand{font-weight:700;letter-spacing:.08em;color:#b4532a;margin:0}
h1{margin:.2rem 0 1rem}
label{display:block;margin:.8rem 0}
input{display:block;width:100%;box-sizing:border-box;padding:.55rem;margin-top:.25rem;
border:1px solid #cbb9a4;border-radius:6px;font:inherit}
button{margin-top:1rem;margin-right:.5rem;padding:.6rem 1.1rem;min-height:2.75rem;border:0;
border-radius:6px;background:#b4532a;color:#fff;font:inherit;cursor:pointer}
button.secondary{background:#e9e0d4;color:#2b2118}
.error{background:#fbe3dc;color:#8a2a10;padding:.6rem;border-radius:6px}
.small{font-size:.85rem;color:#6b5a4a}
"""
AUTHORIZE_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


async def oauth_error_response(_: Request, error: Exception) -> JSONResponse:
    """An RFC 6749 §5.2 error body; invalid_client asks for HTTP Basic authentication."""
    assert isinstance(error, OAuthError)  # noqa: S101 - registered for this type only
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClient):
        headers["WWW-Authenticate"] = 'Basic realm="souk"'
    body = {"error": error.error, "error_description": str(error)}
    return JSONResponse(body, status_code=error.status, headers=headers)


@router.get(
    "/authorize",
    response_class=HTMLResponse,
    summary="Ask the user to sign in",
    openapi_extra=oauth_docs.AUTHORIZE,
)
async def authorize(request: Request, identity: IdentityDep) -> Response:
    parameters = request.query_params
    try:
        checked = await _authorization_request(identity.server, parameters)
    except _Redirect as redirect:
        return redirect.response
    return _sign_in_form(checked, parameters, error=None)


@router.post(
    "/authorize",
    response_class=RedirectResponse,
    status_code=302,
    summary="Sign in and consent (or deny): redirects to the client with a code (or an error)",
    openapi_extra=oauth_docs.SIGN_IN,
)
async def sign_in_and_authorize(request: Request, identity: IdentityDep) -> Response:
    form = await request.form()
    try:
        checked = await _authorization_request(identity.server, form)
    except _Redirect as redirect:
        return redirect.response
    if _single(form, "decision") == "deny":
        # RFC 6749 §4.1.2.1: the user said no; the client learns it and nothing else.
        return _redirect_to_client(
            checked.redirect_uri,
            checked.state,
            error="access_denied",
            error_description="the user denied the request",
            iss=identity.settings.issuer,
        )
    email = _single(form, "email") or ""
    # The browser's address: uvicorn took it from the gateway's X-Forwarded-For.
    source = request.client.host if request.client else ""
    try:
        identity.throttle.check(email, source)
        user = await accounts.authenticate(
            identity.uow(), identity.passwords, email, _single(form, "password") or ""
        )
    except TooManySignInAttempts as error:
        form_page = _sign_in_form(checked, form, error=str(error), status_code=429)
        form_page.headers["Retry-After"] = str(error.retry_after)
        return form_page
    except WrongCredentials as error:
        identity.throttle.failed(email, source)
        return _sign_in_form(checked, form, error=str(error), status_code=401)
    identity.throttle.succeeded(email, source)
    code = await identity.server.issue_code(checked, user.id)
    return _redirect_to_client(
        checked.redirect_uri, checked.state, code=code, iss=identity.settings.issuer
    )


@router.post(
    "/token",
    summary="Exchange a grant for an access token (RFC 6749 §3.2)",
    openapi_extra=oauth_docs.TOKEN,
)
async def token(request: Request) -> JSONResponse:
    parts = identity(request)
    server = parts.server
    form = await request.form()
    client = await _authenticated_client(server, request, form)
    grant_type = _single(form, "grant_type")
    scope = parse_scope(_single(form, "scope"))
    if grant_type == "client_credentials":
        _refuse_internal_client_at_the_edge(request, client.client_id, parts.settings)
        tokens = await server.client_credentials(client, scope)
    elif grant_type == "authorization_code":
        tokens = await server.exchange_code(
            client,
            _required(form, "code"),
            _single(form, "redirect_uri"),
            _single(form, "code_verifier"),
        )
    elif grant_type == "refresh_token":
        tokens = await server.refresh(client, _required(form, "refresh_token"), scope)
    elif grant_type is None:
        raise InvalidRequest("grant_type is required")
    else:
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported")
    return JSONResponse(_token_body(tokens), headers=NO_STORE)


@router.post(
    "/revoke",
    response_class=Response,
    summary="Revoke a refresh token and its family (RFC 7009)",
    openapi_extra=oauth_docs.REVOKE,
)
async def revoke(request: Request) -> Response:
    server = identity(request).server
    form = await request.form()
    client = await _authenticated_client(server, request, form)
    await server.revoke(client, _required(form, "token"))
    return Response(status_code=200, headers=NO_STORE)


# The gateway sets this on every request it passes on (and drops a client's own), so it marks
# a call that came through the public edge; the shop's services call identity directly.
EDGE_HEADER = "x-forwarded-host"


def _refuse_internal_client_at_the_edge(
    request: Request, client_id: str, settings: IdentitySettings
) -> None:
    # A service's secret that leaked must still not buy an outsider that service's scopes.
    if client_id in settings.internal_client_ids and EDGE_HEADER in request.headers:
        raise UnauthorizedClient(
            f"client {client_id!r} is one of the shop's services: its tokens are not issued "
            "through the public edge"
        )


class _Redirect(Exception):  # noqa: N818 - a control-flow signal, not an error
    def __init__(self, response: Response) -> None:
        self.response = response


async def _authorization_request(
    server: AuthorizationServer, parameters: QueryParams | FormData
) -> AuthorizationRequest:
    try:
        # Read first: until the client and its redirect URI are checked, an error (a repeated
        # parameter) is answered here, never by a redirect to where the request pointed.
        client_id = _single(parameters, "client_id")
        redirect_uri = _single(parameters, "redirect_uri")
    except OAuthError as error:
        raise ProblemError(
            400, "invalid-authorization-request", "Invalid authorization request", str(error)
        ) from error
    try:
        return await server.authorization_request(
            client_id=client_id,
            redirect_uri=redirect_uri,
            response_type=_single(parameters, "response_type"),
            scope=parse_scope(_single(parameters, "scope")),
            code_challenge=_single(parameters, "code_challenge"),
            code_challenge_method=_single(parameters, "code_challenge_method"),
            state=_single(parameters, "state"),
        )
    except UnknownRedirect as error:
        # Redirecting to an unchecked URI would make identity an open redirector.
        raise ProblemError(
            400, "invalid-authorization-request", "Invalid authorization request", str(error)
        ) from error
    except OAuthError as error:
        # The client and redirect URI passed the check (UnknownRedirect comes first), so the
        # error may go back to the client; a repeated state is not echoed.
        try:
            state = _single(parameters, "state")
        except OAuthError:
            state = None
        response = _redirect_to_client(
            redirect_uri or "",
            state,
            error=error.error,
            error_description=str(error),
            iss=server.policy.issuer,
        )
        raise _Redirect(response) from error


async def _authenticated_client(
    server: AuthorizationServer, request: Request, form: FormData
) -> Client:
    if _single(form, "client_secret") is not None:
        raise InvalidClient("send client credentials with HTTP Basic authentication")
    authorization = request.headers.get("Authorization")
    if authorization is None:
        client_id = _single(form, "client_id")
        if client_id is None:
            raise InvalidClient("client authentication failed")
        return await server.authenticate_client(client_id, None)
    client_id, secret = _basic_credentials(authorization)
    return await server.authenticate_client(client_id, secret)


def _basic_credentials(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise InvalidClient("malformed HTTP Basic credentials") from error
    client_id, colon, secret = decoded.partition(":")
    if scheme.lower() != "basic" or not colon:
        raise InvalidClient("client authentication failed")
    # RFC 6749 §2.3.1: both are form-urlencoded before they are joined.
    return unquote_plus(client_id), unquote_plus(secret)


def _single(parameters: QueryParams | FormData, name: str) -> str | None:
    values = parameters.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"{name} is given more than once")
    if not values or not isinstance(values[0], str) or values[0] == "":
        return None
    return values[0]


def _required(parameters: FormData, name: str) -> str:
    value = _single(parameters, name)
    if value is None:
        raise InvalidRequest(f"{name} is required")
    return value


def _token_body(tokens: Tokens) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "scope": format_scope(tokens.scope),
    }
    if tokens.refresh_token is not None:
        body["refresh_token"] = tokens.refresh_token
    return body


def _redirect_to_client(redirect_uri: str, state: str | None, **parameters: str) -> Response:
    # ``iss`` tells a client talking to several servers which one answered (RFC 9207).
    if state is not None:
        parameters["state"] = state
    parts = urlsplit(redirect_uri)
    query = urlencode([*parse_qsl(parts.query), *parameters.items()])
    return RedirectResponse(urlunsplit(parts._replace(query=query)), 302, headers=NO_STORE)


def _sign_in_form(
    checked: AuthorizationRequest,
    parameters: QueryParams | FormData,
    *,
    error: str | None,
    status_code: int = 200,
) -> HTMLResponse:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name in AUTHORIZE_PARAMETERS
        if (value := _single(parameters, name)) is not None
    )
    notice = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    email = html.escape(_single(parameters, "email") or "")
    scopes = "".join(
        f"<li>{html.escape(SCOPE_WORDS.get(scope, scope))}</li>" for scope in sorted(checked.scope)
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to Souk</title><style>{_PAGE_STYLE}</style></head>
<body><main class="card"><p class="brand">Souk</p><h1>Sign in</h1>
<p><strong>{html.escape(checked.client.name)}</strong> would like to:</p><ul>{scopes}</ul>
{notice}<form method="post" action="/oauth/authorize">{hidden}
<label>Email <input type="email" name="email" value="{email}" autocomplete="username"
required autofocus></label>
<label>Password <input type="password" name="password" autocomplete="current-password"
required></label>
<button type="submit" name="decision" value="allow">Sign in and allow</button>
<button type="submit" name="decision" value="deny" class="secondary" formnovalidate>Deny</button>
</form><p class="small">New to Souk? Create an account in the shop first.</p></main>
</body></html>"""
    # Framing the form would let another site trick users into consenting (clickjacking).
    headers = {
        **NO_STORE,
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "frame-ancestors 'none'",
    }
    return HTMLResponse(page, status_code=status_code, headers=headers)
