"""Access tokens: what one grants, why one is refused, and the validator that judges them."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

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
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from chassis.auth.keys import IssuerKeys
from chassis.auth.revocations import Revocations
from chassis.logs import get_logger

if TYPE_CHECKING:
    from chassis.auth.keys import PublicKey
    from chassis.settings import ServiceSettings

ALLOWED_ALGORITHMS = ("EdDSA", "ES256")
"""Asymmetric only: never ``none`` and never HS*, whose secret a verifier would have to hold."""
VERIFIED_TOKENS_KEPT = 4096
"""How many verified tokens a validator remembers (least recently used forgotten first)."""

_log = get_logger("chassis.auth")


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
        # Tokens whose signature was verified, with the key that verified it. A client sends
        # the same token for minutes, and the signature check is nearly all of a validation's
        # cost; the key is still looked up and the claims (exp...) and the revocation list
        # still checked on every use, so a withdrawn key or a revoked grant ends it as before.
        self._verified: OrderedDict[str, tuple[PublicKey, dict[str, Any]]] = OrderedDict()

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
        claims = self._verified_claims(token, key, alg)
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

    def _verified_claims(self, token: str, key: PublicKey, alg: str) -> dict[str, Any]:
        seen = self._verified.get(token)
        if seen is not None and seen[0] is key:
            self._verified.move_to_end(token)
            return seen[1]
        claims = _verified_claims(token, key, alg)
        self._verified[token] = (key, claims)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return claims

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


def is_customer(token: AccessToken) -> bool:
    """Whether a person signed in for this token (it names their grant), not a client alone.

    A client-credentials token's subject is the client itself: it is no customer, whatever
    scopes it holds, and routes that act for a customer refuse it.
    """
    return token.grant_id is not None
