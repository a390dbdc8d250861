"""Access tokens: validate a signed JWT against its issuer's JWKS; require scopes on routes.

A service never relies on the gateway alone: every route that needs a caller declares
``require_scopes(...)`` next to itself, and the composition root puts a
:class:`TokenValidator` (or anything else that is an :class:`AccessTokenValidator`) on
``app.state.token_validator``. The gateway checks tokens with the same types and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Protocol
from urllib.parse import quote_plus

import aiohttp
from fastapi import Depends, Request, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyTypeError,
    JoseError,
    MissingClaimError,
    SecurityWarning,
    UnsupportedKeyAlgorithmError,
)
from joserfc.jwk import ECKey, OKPKey
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from chassis.logs import get_logger
from chassis.problems import ProblemError
from chassis.settings import IDENTITY_UPSTREAM

if TYPE_CHECKING:
    from chassis.settings import ServiceSettings

ALLOWED_ALGORITHMS = ("EdDSA", "ES256")
"""Asymmetric only: never ``none`` and never HS*, whose secret a verifier would have to hold."""

_KEY_TYPES: dict[str, type[OKPKey] | type[ECKey]] = {"OKP": OKPKey, "EC": ECKey}
_RETRY_AFTER_FAILED_FETCH = 1.0
_LONGEST_BACK_OFF = 30.0
# What a failed fetch of a key set or a revocation list raises: the network, or a document
# that does not parse (joserfc raises KeyError and TypeError on some odd keys).
_FETCH_FAILURES = (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError)
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret

_log = get_logger("chassis.auth")

PublicKey = OKPKey | ECKey


class Rejection(StrEnum):
    """Why an access token was refused; stable, for clients and dashboards."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    WRONG_AUDIENCE = "wrong-audience"
    WRONG_ISSUER = "wrong-issuer"
    MALFORMED = "malformed"
    ALGORITHM_NOT_ALLOWED = "algorithm-not-allowed"
    NOT_AN_ACCESS_TOKEN = "not-an-access-token"  # noqa: S105 - a reason, not a secret
    REVOKED = "revoked"


# Fixed texts, safe for a WWW-Authenticate header: never the token or any of its claims.
_DESCRIPTIONS = {
    Rejection.EXPIRED: "The access token expired",
    Rejection.NOT_YET_VALID: "The access token is not valid yet",
    Rejection.BAD_SIGNATURE: "The access token signature does not verify",
    Rejection.UNKNOWN_KEY: "The access token is signed by a key the issuer does not publish",
    Rejection.WRONG_AUDIENCE: "The access token is meant for another audience",
    Rejection.WRONG_ISSUER: "The access token comes from another issuer",
    Rejection.MALFORMED: "The access token is malformed",
    Rejection.ALGORITHM_NOT_ALLOWED: "The access token is signed with an algorithm not allowed",
    Rejection.NOT_AN_ACCESS_TOKEN: "The token is not an access token (typ at+jwt)",
    Rejection.REVOKED: "The access token's grant was revoked",
}

# RFC 9068 §2.1: an access token's header says "typ": "at+jwt", so that no other JWT the
# issuer signs (an ID token, say) passes for one.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


class InvalidTokenError(Exception):
    """The access token was refused; ``reason`` says why, and nothing names the token."""

    def __init__(self, reason: Rejection) -> None:
        super().__init__(f"access token rejected: {reason}")
        self.reason = reason
        self.description = _DESCRIPTIONS[reason]


class KeysUnavailableError(Exception):
    """The issuer's JWKS could not be fetched, so no token can be judged just now."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a validated access token grants: who, through which client, which scopes, until when."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    token_id: str
    expires_at: datetime
    grant_id: str | None = None
    """The grant (refresh-token family) the token was issued from, ``sid``; None for a
    client acting on its own behalf."""

    def grants(self, *scopes: str) -> bool:
        """Whether every one of ``scopes`` was granted."""
        return self.scopes.issuperset(scopes)


class AccessTokenValidator(Protocol):
    """Anything that judges access tokens: :class:`TokenValidator`, or a test's fake."""

    async def validate(self, token: str) -> AccessToken:
        """What ``token`` grants; raises InvalidTokenError, or KeysUnavailableError."""
        ...


def issuer_validator(settings: ServiceSettings) -> TokenValidator | None:
    """A validator of the configured issuer's tokens, keys from identity; None if unset.

    Build it at start-up, inside the event loop its JWKS session will live in; close it at
    shutdown.
    """
    if settings.auth_issuer is None:
        return None
    return TokenValidator(
        IssuerKeys(settings.jwks_url()),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway=settings.auth_leeway_seconds,
        revocations=Revocations(
            settings.revocations_url(), max_age=settings.auth_revocations_max_age_seconds
        ),
    )


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
            self._session = aiohttp.ClientSession(timeout=self._timeout)
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


class _SharedRefresh:
    """One fetch in flight at a time, shared by every caller, and when to try again.

    The time of the next fetch is stamped when a fetch ends, not when it starts: after a
    success, ``interval`` later; after a failure, a back-off that doubles up to
    ``longest_back_off``. A fetch that hangs until its timeout is thus waited for once, by
    the callers that need its result, and not once per waiting caller in turn.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[None]],
        *,
        interval: float,
        longest_back_off: float,
        clock: Callable[[], float],
        what: str,
        url: str,
    ) -> None:
        self._fetch = fetch
        self._interval = interval
        self._longest_back_off = longest_back_off
        self._clock = clock
        self._what = what
        self._url = url
        self._failures = 0
        self._next_fetch_at = -math.inf
        self._in_flight: asyncio.Task[None] | None = None

    def due(self) -> bool:
        """Whether a call to :meth:`refresh` would start a fetch now."""
        return self._in_flight is None and self._clock() >= self._next_fetch_at

    async def refresh(self, *, join: bool) -> None:
        """Fetch if due and wait for it; a fetch already in flight is waited for if ``join``."""
        task = self._in_flight
        if task is None:
            if self._clock() < self._next_fetch_at:
                return
            task = self._in_flight = asyncio.create_task(self._run())
        elif not join:
            return
        # Shielded: a caller that gives up (its own deadline) does not cancel the others' fetch.
        await asyncio.shield(task)

    async def close(self) -> None:
        """Stop a fetch still in flight."""
        task, self._in_flight = self._in_flight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            await self._fetch()
        except _FETCH_FAILURES as error:
            self._failures += 1
            back_off = _RETRY_AFTER_FAILED_FETCH * 2 ** min(self._failures - 1, 16)
            self._next_fetch_at = self._clock() + min(back_off, self._longest_back_off)
            _log.warning(
                f"{self._what} fetch failed",
                url=self._url,
                error=type(error).__name__,
                failures=self._failures,
            )
        else:
            self._failures = 0
            self._next_fetch_at = self._clock() + self._interval
        finally:
            self._in_flight = None


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
        self._refresh = _SharedRefresh(
            self._load,
            interval=refresh_cooldown,
            longest_back_off=max(refresh_cooldown, _RETRY_AFTER_FAILED_FETCH),
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
            self._session = aiohttp.ClientSession(timeout=self._timeout)
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


class Revocations:
    """The grants the issuer revoked lately, fetched over HTTP and cached for ``max_age``.

    Revoking a refresh token ends its whole family (the grant) at once, but the access tokens
    already issued from it are signed and would stay good until they expire. Identity lists
    each revoked grant for as long as such tokens may live; a validator refuses a token whose
    grant (``sid``) is listed. The list is fetched when a token is checked and the copy is
    older than ``max_age``: an idle process asks nothing, a busy one at most once per
    ``max_age``, conditionally (304 when nothing changed). Concurrent callers share one
    fetch, and only the caller that starts it waits for it: the others use the last list
    meanwhile. When identity cannot be reached the last list stays in force, the failure is
    logged, and the next try waits a growing back-off: a dead or frozen identity must not
    fail, nor stall, every request.
    """

    def __init__(
        self,
        url: str,
        *,
        max_age: float = 5.0,
        fetch_timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._grants: frozenset[str] = frozenset()
        self._etag: str | None = None
        self._loaded = False
        self._refresh = _SharedRefresh(
            self._fetch,
            interval=max_age,
            longest_back_off=max(max_age, _LONGEST_BACK_OFF),
            clock=clock,
            what="revocation list",
            url=url,
        )

    async def revoked(self, grant_id: str) -> bool:
        """Whether the grant ``grant_id`` is revoked, as of at most ``max_age`` ago."""
        if not self._loaded or self._refresh.due():
            # Until a first list has come, a caller waits for the fetch under way.
            await self._refresh.refresh(join=not self._loaded)
        return grant_id in self._grants

    async def close(self) -> None:
        """Stop a fetch in flight and close the HTTP session, if one was opened."""
        await self._refresh.close()
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def _fetch(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Accept": "application/json"}
        if self._etag is not None:
            headers["If-None-Match"] = self._etag
        async with self._session.get(self.url, headers=headers) as response:
            if response.status == 304:  # Not Modified
                self._loaded = True
                return
            response.raise_for_status()
            document = await response.json(content_type=None)
            etag = response.headers.get("ETag")
        grants = document.get("grants") if isinstance(document, dict) else None
        if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
            raise ValueError("not a revocation list")
        if len(grants) != len(self._grants):
            _log.info("revocation list fetched", url=self.url, grants=len(grants))
        self._grants = frozenset(grants)
        self._etag = etag
        self._loaded = True


class TokenValidator:
    """Validates access tokens from one issuer for one audience.

    ``TokenValidator(IssuerKeys(jwks_url), issuer=..., audience=...)``; ``leeway`` (seconds)
    absorbs clock skew on exp, nbf and iat. With ``revocations``, a token issued from a grant
    the issuer has revoked is refused too.
    """

    def __init__(
        self,
        keys: IssuerKeys,
        *,
        issuer: str,
        audience: str,
        leeway: int = 30,
        revocations: Revocations | None = None,
    ) -> None:
        self.keys = keys
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        required: ClaimsOption = {"essential": True}
        self._claims = JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            sub=required,
            exp=required,
            nbf=required,
            iat=required,
            jti=required,
            # A client may be granted no scope at all: present, possibly empty.
            scope={"essential": True, "allow_blank": True},
        )

    async def validate(self, token: str) -> AccessToken:
        """What ``token`` grants; raises InvalidTokenError, or KeysUnavailableError."""
        try:
            return await self._validate(token)
        except InvalidTokenError as error:
            _log.info("access token rejected", reason=str(error.reason))
            raise

    async def close(self) -> None:
        """Release the HTTP sessions used for the JWKS and the revocation list."""
        await self.keys.close()
        if self.revocations is not None:
            await self.revocations.close()

    async def _validate(self, token: str) -> AccessToken:
        header = _header_of(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError(Rejection.ALGORITHM_NOT_ALLOWED)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidTokenError(Rejection.NOT_AN_ACCESS_TOKEN)
        if not isinstance(kid, str):
            raise InvalidTokenError(Rejection.UNKNOWN_KEY)
        key = await self.keys.key(kid)
        if key is None:
            raise InvalidTokenError(Rejection.UNKNOWN_KEY)
        claims = _verified_claims(token, key, alg)
        self._check(claims)
        scope, client_id, grant_id = claims["scope"], claims.get("client_id"), claims.get("sid")
        if not isinstance(scope, str) or not all(
            isinstance(value, str | None) for value in (client_id, grant_id)
        ):
            raise InvalidTokenError(Rejection.MALFORMED)
        if (
            grant_id is not None
            and self.revocations is not None
            and await self.revocations.revoked(grant_id)
        ):
            raise InvalidTokenError(Rejection.REVOKED)
        try:
            expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise InvalidTokenError(Rejection.MALFORMED) from error
        return AccessToken(
            subject=claims["sub"],
            client_id=client_id,
            scopes=frozenset(scope.split()),
            token_id=claims["jti"],
            expires_at=expires_at,
            grant_id=grant_id,
        )

    def _check(self, claims: dict[str, Any]) -> None:
        try:
            self._claims.validate(claims)
        except ExpiredTokenError as error:
            raise InvalidTokenError(Rejection.EXPIRED) from error
        except MissingClaimError as error:
            raise InvalidTokenError(Rejection.MALFORMED) from error
        except ClaimError as error:
            raise InvalidTokenError(_claim_rejection(error.claim, claims)) from error


def _header_of(token: str) -> dict[str, Any]:
    try:
        # Typed as a dict, but a JSON string that merely contains "alg" gets through too.
        header: object = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError, UnicodeError, TypeError) as error:
        raise InvalidTokenError(Rejection.MALFORMED) from error
    if not isinstance(header, dict):
        raise InvalidTokenError(Rejection.MALFORMED)
    crit = header.get("crit", [])
    # RFC 7515 §4.1.11: a list of names. joserfc raises TypeError on anything else.
    if not isinstance(crit, list) or not all(isinstance(name, str) for name in crit):
        raise InvalidTokenError(Rejection.MALFORMED)
    return header


def _verified_claims(token: str, key: PublicKey, alg: str) -> dict[str, Any]:
    try:
        key.check_alg(alg)
        # EdDSA is the name RFC 8037 gives Ed25519 and the one issuers publish today.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            return jwt.decode(token, key, algorithms=[alg]).claims
    except BadSignatureError as error:
        raise InvalidTokenError(Rejection.BAD_SIGNATURE) from error
    except (InvalidKeyTypeError, UnsupportedKeyAlgorithmError) as error:
        # The token names a key that was not made for its algorithm.
        raise InvalidTokenError(Rejection.ALGORITHM_NOT_ALLOWED) from error
    except (JoseError, ValueError, TypeError, KeyError) as error:
        # TypeError and KeyError: joserfc's answers to some odd headers (an odd crit).
        raise InvalidTokenError(Rejection.MALFORMED) from error


def _claim_rejection(claim: str, claims: dict[str, Any]) -> Rejection:
    if claim == "iss":
        return Rejection.WRONG_ISSUER
    if claim == "aud":
        return Rejection.WRONG_AUDIENCE
    numeric = isinstance(claims.get(claim), int | float) and not isinstance(claims[claim], bool)
    if claim in {"nbf", "iat"} and numeric:
        return Rejection.NOT_YET_VALID
    return Rejection.MALFORMED


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
