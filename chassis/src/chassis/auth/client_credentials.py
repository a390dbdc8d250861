"""A process's own access token, by the client credentials grant, cached until near expiry."""

from __future__ import annotations

import asyncio
import math
import time
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote_plus

import aiohttp

from chassis.logs import get_logger
from chassis.settings import IDENTITY_UPSTREAM
from chassis.tracing import client_tracing

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    from chassis.settings import ServiceSettings

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret

_log = get_logger("chassis.auth")


class TokenUnavailableError(Exception):
    """The issuer gave no token; ``transient`` unless it refused the client (a setup error)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class AccessTokenSource(Protocol):
    """Where a process gets the access token for its own calls: :class:`ClientCredentials`."""

    async def token(self) -> str:
        """A valid access token; raises TokenUnavailableError."""
        ...


def client_credentials_for(
    settings: ServiceSettings, *, client_id: str, secret: str, scopes: Collection[str]
) -> ClientCredentials:
    """This process's own tokens from the first identity instance, as client ``client_id``.

    Build it at start-up, inside the event loop its HTTP session will live in; close it at
    shutdown.
    """
    token_url = settings.upstream(IDENTITY_UPSTREAM)[0].rstrip("/") + TOKEN_PATH
    return ClientCredentials(token_url, client_id, secret, scopes)


class ClientCredentials:
    """A service's own access token, by the client credentials grant, cached until near expiry.

    The token is fetched again once ``refresh_margin`` seconds (or half its lifetime, if that
    is shorter) are left; concurrent callers then wait for one shared fetch.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        secret: str,
        scopes: Collection[str],
        *,
        refresh_margin: float = 60.0,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        # RFC 6749 §2.3.1: both are form-urlencoded before HTTP Basic joins them.
        self._authorization = aiohttp.encode_basic_auth(quote_plus(client_id), quote_plus(secret))
        self._scope = " ".join(sorted(scopes))
        self._refresh_margin = refresh_margin
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._refresh_at = -math.inf
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """The cached access token, or a new one if it is close to expiring."""
        token = self._token
        if token is not None and self._clock() < self._refresh_at:
            return token
        async with self._lock:
            token = self._token
            if token is None or self._clock() >= self._refresh_at:
                token = self._token = await self._fetch()
            return token

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def _fetch(self) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trace_configs=[client_tracing()]
            )
        form = {"grant_type": "client_credentials", "scope": self._scope}
        asked_at = self._clock()
        try:
            async with self._session.post(
                self.token_url,
                data=form,
                headers={"Authorization": self._authorization, "Accept": "application/json"},
            ) as response:
                status = response.status
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise TokenUnavailableError(
                f"cannot get a token from {self.token_url}: {type(error).__name__}",
                transient=True,
            ) from error
        if status != 200 or not isinstance(body, dict):
            raise _refusal(self.token_url, self.client_id, status, body)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not isinstance(lifetime, int) or lifetime <= 0:
            raise TokenUnavailableError(
                f"{self.token_url} answered without a usable access token", transient=True
            )
        self._refresh_at = asked_at + lifetime - min(self._refresh_margin, lifetime / 2)
        _log.info("client token fetched", client_id=self.client_id, expires_in=lifetime)
        return token


def _refusal(token_url: str, client_id: str, status: int, body: object) -> TokenUnavailableError:
    # The OAuth error code and description only: an error body never carries the secret.
    error = body.get("error") if isinstance(body, dict) else None
    description = body.get("error_description") if isinstance(body, dict) else None
    reason = f"{error}: {description}" if error else f"HTTP {status}"
    return TokenUnavailableError(
        f"{token_url} refused client {client_id!r} a token ({reason})",
        transient=status >= 500 or status == 429,
    )
