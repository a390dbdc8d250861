"""The issuer's public signing keys (its JWKS), fetched over HTTP and cached."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

from chassis.auth.refresh import RETRY_AFTER_FAILED_FETCH, SharedRefresh
from chassis.logs import get_logger
from chassis.tracing import client_tracing

if TYPE_CHECKING:
    from collections.abc import Callable

_KEY_TYPES: dict[str, type[OKPKey] | type[ECKey]] = {"OKP": OKPKey, "EC": ECKey}

_log = get_logger("chassis.auth")

PublicKey = OKPKey | ECKey


class KeysUnavailableError(Exception):
    """The issuer's JWKS could not be fetched, so no token can be judged just now."""


class IssuerKeys:
    """The issuer's published signing keys, fetched over HTTP and cached.

    A refresh happens on an unknown ``kid`` or when the set is older than ``max_age``, but
    at most once per ``refresh_cooldown`` seconds, so a flood of forged kids costs the
    issuer one request per cooldown; concurrent callers share one fetch, and a failed one
    is tried again after a growing back-off. A caller whose key is known does not wait for
    a refresh another caller started: it uses the keys it has.
    """

    def __init__(
        self,
        jwks_url: str,
        *,
        refresh_cooldown: float = 30.0,
        max_age: float = 600.0,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self._max_age = max_age
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock
        self._keys: dict[str, PublicKey] = {}
        self._loaded_at: float | None = None
        self._refresh = SharedRefresh(
            self._load,
            interval=refresh_cooldown,
            longest_back_off=max(refresh_cooldown, RETRY_AFTER_FAILED_FETCH),
            clock=clock,
            what="jwks",
            url=jwks_url,
        )

    async def key(self, kid: str) -> PublicKey | None:
        """The key named ``kid``, refreshing the set first if it lacks it or has aged."""
        key = self._keys.get(kid)
        if key is None or self._aged():
            await self._refresh.refresh(join=key is None)
            key = self._keys.get(kid)
        if self._loaded_at is None:
            raise KeysUnavailableError(f"cannot fetch the JWKS at {self.jwks_url}")
        return key

    async def close(self) -> None:
        """Stop a fetch in flight and close the HTTP session, if one was opened."""
        await self._refresh.close()
        if self._session is not None:
            await self._session.close()
        self._session = None

    def _aged(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at > self._max_age

    async def _load(self) -> None:
        # On failure the keys we have stay: a dead issuer must not fail valid tokens.
        keys = await self._fetch()
        self._keys = keys
        self._loaded_at = self._clock()
        _log.info("jwks fetched", url=self.jwks_url, keys=len(keys))

    async def _fetch(self) -> dict[str, PublicKey]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trace_configs=[client_tracing()]
            )
        async with self._session.get(
            self.jwks_url, headers={"Accept": "application/json"}
        ) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set")  # noqa: TRY004 - a bad document, like bad JSON
        return _signing_keys(document["keys"])


def _signing_keys(entries: list[Any]) -> dict[str, PublicKey]:
    # Only keys we could ever verify with: named, asymmetric, for signing. An "oct" key in a
    # JWKS is skipped, so it can never stand in as an HMAC secret.
    keys: dict[str, PublicKey] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kty, kid = entry.get("kty"), entry.get("kid")
        key_type = _KEY_TYPES.get(kty) if isinstance(kty, str) else None
        if key_type is None or not isinstance(kid, str):
            continue
        try:
            keys[kid] = key_type.import_key(entry)
        except (JoseError, ValueError, TypeError, KeyError):
            # KeyError: joserfc's answer to a curve it does not know (crv P-192, say). One
            # odd key must not stop the others from verifying tokens.
            _log.warning("jwks key skipped", kid=kid)
    return keys
