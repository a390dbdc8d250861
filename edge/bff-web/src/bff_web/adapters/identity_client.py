"""Identity as the storefront's authorization server: token, revoke, and new accounts.

The token and revocation endpoints speak RFC 6749 (form bodies, HTTP Basic client
authentication, ``{"error": ...}`` answers), which ``HttpUpstream`` does not; they are
called here on the process's one aiohttp session, round robin over identity's instances.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import aiohttp

from bff_web.domain.errors import SignInFailed, SignInRequired, SignUpRefused
from bff_web.domain.session import CustomerTokens
from chassis.requests import outbound_headers
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from bff_web.service_layer.ports import Authorization
    from chassis.upstream import HttpUpstream

_NAME = "identity"


class IdentityClient:
    """Implements the Identity port as the confidential client ``client_id``."""

    def __init__(
        self,
        urls: Sequence[str],
        session: aiohttp.ClientSession,
        *,
        client_id: str,
        secret: str,
        timeout: float,
        connect_timeout: float,
        accounts: HttpUpstream,
    ) -> None:
        self._bases = itertools.cycle([url.rstrip("/") for url in urls])
        self._session = session
        # RFC 6749 §2.3.1: both are form-urlencoded before HTTP Basic joins them.
        self._authorization = aiohttp.encode_basic_auth(quote_plus(client_id), quote_plus(secret))
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._accounts = accounts

    async def exchange(self, authorization: Authorization, now: datetime) -> CustomerTokens:
        status, body = await self._post(
            "/oauth/token",
            {
                "grant_type": "authorization_code",
                "code": authorization.code,
                "redirect_uri": authorization.redirect_uri,
                "code_verifier": authorization.code_verifier,
            },
        )
        if status == 400:
            raise SignInFailed(f"identity refused the sign-in: {_oauth_error(body)}")
        return self._tokens("/oauth/token", status, body, now)

    async def refresh(self, refresh_token: str, now: datetime) -> CustomerTokens:
        status, body = await self._post(
            "/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        if status == 400:
            raise SignInRequired(f"your sign-in has ended: {_oauth_error(body)}")
        return self._tokens("/oauth/token", status, body, now)

    async def revoke(self, refresh_token: str) -> None:
        status, body = await self._post(
            "/oauth/revoke", {"token": refresh_token, "token_type_hint": "refresh_token"}
        )
        if status != 200:
            raise UpstreamFailure(
                _NAME,
                f"POST /oauth/revoke answered {status}: {_oauth_error(body)}",
                transient=False,
            )

    async def register(self, email: str, password: str) -> None:
        answer = await self._accounts.call(
            "POST", "/users", body={"email": email, "password": password}
        )
        if answer.status in {409, 422}:
            raise SignUpRefused(_sign_up_refusal(answer.problem_type(), answer.problem_detail()))
        if answer.status != 201:
            raise self._accounts.unexpected("POST", "/users", answer)

    async def authorize(self, parameters: Mapping[str, str], email: str, password: str) -> str:
        path = "/oauth/authorize"
        form = {**parameters, "email": email, "password": password, "decision": "allow"}
        try:
            async with self._session.post(
                next(self._bases) + path,
                data=form,
                headers=outbound_headers(),
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status, location = response.status, response.headers.get("Location")
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as error:
            raise UpstreamFailure(
                _NAME, f"POST {path}: {type(error).__name__}", transient=True
            ) from error
        if status in {302, 303} and location:
            return location
        if status in {400, 401, 429}:
            raise SignInFailed(f"identity did not sign the new account in ({status})")
        raise UpstreamFailure(_NAME, f"POST {path} answered {status}", transient=status >= 500)

    async def _post(self, path: str, form: Mapping[str, str]) -> tuple[int, Any]:
        headers = {
            **outbound_headers(),
            "Authorization": self._authorization,
            "Accept": "application/json",
        }
        try:
            async with self._session.post(
                next(self._bases) + path,
                data=dict(form),
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                body = await response.json(content_type=None)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as error:
            raise UpstreamFailure(
                _NAME, f"POST {path}: {type(error).__name__}", transient=True
            ) from error
        except ValueError as error:
            raise UpstreamFailure(
                _NAME, f"POST {path} answered no JSON", transient=status >= 500
            ) from error
        if status >= 500 or status == 429:
            raise UpstreamFailure(_NAME, f"POST {path} answered {status}", transient=True)
        return status, body

    def _tokens(self, path: str, status: int, body: Any, now: datetime) -> CustomerTokens:
        if status != 200 or not isinstance(body, dict):
            # 401 invalid_client: the storefront's own id or secret is wrong, a setup error.
            raise UpstreamFailure(
                _NAME, f"POST {path} answered {status}: {_oauth_error(body)}", transient=False
            )
        access, lifetime = body.get("access_token"), body.get("expires_in")
        refresh = body.get("refresh_token")
        if not isinstance(access, str) or not isinstance(lifetime, int) or lifetime <= 0:
            raise UpstreamFailure(_NAME, f"POST {path} answered no usable token", transient=False)
        return CustomerTokens(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) else None,
            expires_at=now + timedelta(seconds=lifetime),
        )


def _oauth_error(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or "no reason given")
    return "no reason given"


def _sign_up_refusal(problem_type: str, detail: str) -> str:
    if problem_type == "email-taken":
        return "An account with this email address exists already: sign in instead."
    if problem_type == "weak-password":
        return f"Choose a stronger password: {detail}"
    if problem_type == "invalid-email":
        return "That does not look like an email address."
    return detail
