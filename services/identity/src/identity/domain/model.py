"""Accounts, clients, grants, codes, refresh tokens and signing keys, and the rules each keeps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from email_validator import EmailNotValidError, validate_email
from zxcvbn import zxcvbn

from identity.domain.errors import InvalidEmail, InvalidGrant, InvalidScope, WeakPassword

if TYPE_CHECKING:
    from datetime import datetime, timedelta

EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
# Argon2 hashes any length, but hashing megabytes on request would be a cheap denial of service.
PASSWORD_MAX_LENGTH = 256
# zxcvbn's score, 0-4: 3 is "safely unguessable: moderate protection from an offline attack".
PASSWORD_MIN_SCORE = 3
ZXCVBN_MAX_LENGTH = 72

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# RFC 7636 §4.1: 43 to 128 unreserved characters.
_CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")

Scope = frozenset[str]


def parse_scope(text: str | None) -> Scope | None:
    """The scopes of a space-separated ``scope`` parameter; None when it was not given."""
    if text is None:
        return None
    return frozenset(text.split())


def format_scope(scope: Scope) -> str:
    """A scope as the space-separated text tokens and responses carry, in a stable order."""
    return " ".join(sorted(scope))


def normalise_email(email: str) -> str:
    """The email address as accounts are keyed by: trimmed and in lower case.

    Its syntax is checked by email-validator (RFC 5322/6531, no control characters, a
    domain name that can exist), without asking DNS whether it takes mail.
    """
    address = email.strip().lower()
    if len(address) > EMAIL_MAX_LENGTH or not _EMAIL.match(address):
        raise InvalidEmail(f"{email!r} is not an email address")
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(f"{email!r} is not an email address: {error}") from None
    return address


def check_password_strength(password: str, email: str) -> None:
    """Refuse a password too short, too long, or that zxcvbn guesses easily.

    zxcvbn (Dropbox's estimator, with its lists of common passwords, words, names and
    keyboard patterns) must rate it at least ``PASSWORD_MIN_SCORE`` of 4, with the email
    address counted as known to the attacker.
    """
    if len(password) < PASSWORD_MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise WeakPassword(f"a password has at most {PASSWORD_MAX_LENGTH} characters")
    if password.strip().lower() == email or len(set(password)) < 3:
        raise WeakPassword("the password is too easy to guess")
    # zxcvbn rates at most 72 characters; a longer one is rated on its start.
    rating = zxcvbn(password[:ZXCVBN_MAX_LENGTH], user_inputs=[email, *email.split("@")])
    if int(rating["score"]) < PASSWORD_MIN_SCORE:
        hint = rating["feedback"].get("warning") or "it is a common password or pattern"
        raise WeakPassword(f"the password is too easy to guess: {hint}".rstrip("."))


def fingerprint(token: str) -> str:
    """What is stored of an opaque token: its SHA-256.

    Codes and refresh tokens are 256 random bits, so a fast hash is enough: unlike a
    password, nobody can guess one from its hash by trying likely values.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def s256_challenge(code_verifier: str) -> str:
    """The PKCE S256 code challenge of a code verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class User:
    """An account: someone who signs in with an email address and a password."""

    id: str
    email: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True)
class Client:
    """An application registered to ask for tokens.

    A confidential client (a script, a service) proves itself with its secret; a public one
    (a browser or a mobile app) cannot keep a secret, so only PKCE protects its codes.
    """

    client_id: str
    name: str
    secret_hash: str | None
    scopes: Scope
    redirect_uris: tuple[str, ...] = ()

    @property
    def confidential(self) -> bool:
        return self.secret_hash is not None

    def grant_scope(self, requested: Scope | None) -> Scope:
        """The scope a token gets: what was asked for, or all the client's when nothing was."""
        if requested is None:
            return self.scopes
        beyond = requested - self.scopes
        if beyond:
            raise InvalidScope(f"not allowed for this client: {format_scope(beyond)}")
        return requested

    def registered(self, redirect_uri: str) -> bool:
        """Whether ``redirect_uri`` is one of the client's, compared exactly (RFC 9700 §4.1)."""
        return redirect_uri in self.redirect_uris


@dataclass
class Grant:
    """One authorization a user gave a client: the family of every token issued from it."""

    id: str
    client_id: str
    subject: str
    scope: Scope
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self, now: datetime) -> None:
        """End the grant: no refresh token of its family works any more."""
        if self.revoked_at is None:
            self.revoked_at = now


@dataclass
class AuthorizationCode:
    """A single-use code the authorize step sends back, exchanged for tokens within minutes."""

    code_hash: str
    grant_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    expires_at: datetime
    used_at: datetime | None = None

    def check_redeemable(self, client_id: str, redirect_uri: str | None, now: datetime) -> None:
        """Refuse a code of another client, another redirect URI, or out of date."""
        if client_id != self.client_id:
            raise InvalidGrant("the code was issued to another client")
        if redirect_uri != self.redirect_uri:
            raise InvalidGrant("redirect_uri differs from the one the code was issued for")
        if now >= self.expires_at:
            raise InvalidGrant("the code has expired")

    def check_verifier(self, code_verifier: str | None) -> None:
        """Refuse a missing or wrong PKCE code verifier."""
        if code_verifier is None or not _CODE_VERIFIER.match(code_verifier):
            raise InvalidGrant("a code_verifier of 43 to 128 unreserved characters is required")
        if not hmac.compare_digest(s256_challenge(code_verifier), self.code_challenge):
            raise InvalidGrant("the code_verifier does not match the code_challenge")


@dataclass
class RefreshToken:
    """A refresh token (kept as its fingerprint), used at most once: each use rotates it."""

    token_hash: str
    grant_id: str
    expires_at: datetime
    used_at: datetime | None = None

    @property
    def used(self) -> bool:
        return self.used_at is not None


class KeyState(StrEnum):
    """Where a signing key is in its life: published first, then signing, then retiring."""

    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass
class SigningKey:
    """A key pair that signs access tokens; ``private_jwk`` is the whole key as a JWK."""

    kid: str
    alg: str
    private_jwk: dict[str, Any] = field(repr=False)
    state: KeyState
    created_at: datetime
    retired_at: datetime | None = None

    def published(self, now: datetime, retired_keys_kept: timedelta) -> bool:
        """Whether validators may still meet a token it signed, or soon will."""
        if self.retired_at is None:
            return True
        return now < self.retired_at + retired_keys_kept


def active_key(keys: list[SigningKey]) -> SigningKey:
    """The key that signs tokens now."""
    for key in keys:
        if key.state is KeyState.ACTIVE:
            return key
    raise LookupError("no active signing key: identity has not made its keys yet")


def rotate(keys: list[SigningKey], fresh: SigningKey, now: datetime) -> None:
    """The next key starts signing, the signer retires, and ``fresh`` becomes the next key.

    The next key has been in the JWKS since the previous rotation, so validators already
    know it when its first token arrives; the retired one stays published until its last
    token expires.
    """
    for key in keys:
        if key.state is KeyState.ACTIVE:
            key.state, key.retired_at = KeyState.RETIRED, now
    for key in keys:
        if key.state is KeyState.NEXT:
            key.state = KeyState.ACTIVE
    fresh.state = KeyState.NEXT
    keys.append(fresh)
