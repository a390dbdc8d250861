"""Access tokens from Souk's identity service, through the gateway: for `souk token` and tests."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from typing import NoReturn
from urllib.parse import parse_qs, urlsplit

import httpx

WEB_CLIENT = "souk-web"
"""The demo public client a customer's browser signs in through."""
WEB_CALLBACK = "http://127.0.0.1:8765/callback"
"""Its registered redirect URI: the code is read from the redirect, nothing listens there."""
CUSTOMER_SCOPES = ("orders:read", "orders:write")


class TokenError(RuntimeError):
    """Identity refused a step of getting a token; the message says which and why."""


def customer_token(
    base_url: str,
    email: str,
    password: str,
    *,
    scopes: Sequence[str] = CUSTOMER_SCOPES,
    timeout: float = 10.0,
) -> str:
    """An access token of the customer ``email``, registered first if new.

    Runs the authorization code flow with PKCE (S256) through the gateway at ``base_url``, as
    the public client souk-web, signing in on identity's consent step without a browser.
    """
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        registered = client.post("/api/users", json={"email": email, "password": password})
        if registered.status_code not in {201, 409}:  # 409: already registered
            _refused("registering", registered)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(16)
        consent = client.post(
            "/oauth/authorize",
            data={
                "response_type": "code",
                "client_id": WEB_CLIENT,
                "redirect_uri": WEB_CALLBACK,
                "scope": " ".join(scopes),
                "state": state,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
                "email": email,
                "password": password,
            },
        )
        if consent.status_code != 302:
            _refused("signing in", consent)
        query = parse_qs(urlsplit(consent.headers["location"]).query)
        if query.get("state") != [state] or "code" not in query:
            _refused("signing in", consent)
        tokens = client.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "client_id": WEB_CLIENT,
                "code": query["code"][0],
                "redirect_uri": WEB_CALLBACK,
                "code_verifier": verifier,
            },
        )
        return _access_token(tokens)


def client_token(
    base_url: str,
    client_id: str,
    secret: str,
    scopes: Sequence[str],
    *,
    timeout: float = 10.0,
    client: httpx.Client | None = None,
) -> str:
    """An access token of the confidential client ``client_id``, by client credentials
    (sent with ``client`` if given: one that reaches instances on Unix sockets)."""
    post = client.post if client is not None else httpx.post
    response = post(
        base_url.rstrip("/") + "/oauth/token",
        data={"grant_type": "client_credentials", "scope": " ".join(scopes)},
        auth=(client_id, secret),
        timeout=timeout,
    )
    return _access_token(response)


def _access_token(response: httpx.Response) -> str:
    if response.status_code != httpx.codes.OK:
        _refused("getting a token", response)
    token = response.json().get("access_token")
    if not isinstance(token, str):
        # Not _refused: the body may hold a refresh token, which must not reach a log.
        raise TokenError("getting a token failed: the answer holds no access_token")
    return token


def _refused(step: str, response: httpx.Response) -> NoReturn:
    # The answer's status and body say why; neither a password nor a token is in them.
    raise TokenError(
        f"{step} failed: {response.request.method} {response.request.url.path} answered "
        f"{response.status_code}: {response.text[:500]}"
    )
