"""What the service layer needs from storage, password hashing and JOSE, as protocols."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from chassis import unit_of_work

if TYPE_CHECKING:
    from datetime import datetime

    from identity.domain.model import (
        AuthorizationCode,
        Client,
        Grant,
        RefreshToken,
        SigningKey,
        User,
    )


class Users(Protocol):
    async def add(self, user: User) -> None:
        """Store a new account; raise EmailTaken if its email address is in use."""

    async def by_email(self, email: str) -> User | None:
        """The account with this (normalised) email address, if any."""


class Clients(Protocol):
    async def get(self, client_id: str) -> Client | None:
        """The registered client with this id, if any."""

    async def put(self, client: Client) -> None:
        """Register the client, or replace its registration."""


class SigningKeys(Protocol):
    async def all(self) -> list[SigningKey]:
        """Every signing key kept, oldest first."""

    async def add(self, key: SigningKey) -> None:
        """Keep a new signing key."""

    async def save(self, key: SigningKey) -> None:
        """Store the key's new state."""


class Grants(Protocol):
    async def add(self, grant: Grant) -> None:
        """Store a new grant."""

    async def get(self, grant_id: str) -> Grant | None:
        """The grant with this id, if any."""

    async def save(self, grant: Grant) -> None:
        """Store the grant's new state (its revocation)."""

    async def revoked_since(self, moment: datetime) -> list[str]:
        """The ids of the grants revoked at or after ``moment``, in id order."""


class AuthorizationCodes(Protocol):
    async def add(self, code: AuthorizationCode) -> None:
        """Store a new code."""

    async def get(self, code_hash: str) -> AuthorizationCode | None:
        """The code with this fingerprint, if any."""

    async def claim(self, code_hash: str, now: datetime) -> bool:
        """Mark the code used; False if it already was (by a concurrent request too)."""


class RefreshTokens(Protocol):
    async def add(self, token: RefreshToken) -> None:
        """Store a new refresh token."""

    async def get(self, token_hash: str) -> RefreshToken | None:
        """The refresh token with this fingerprint, if any."""

    async def claim(self, token_hash: str, now: datetime) -> bool:
        """Mark the token used; False if it already was (by a concurrent request too)."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over identity's storage; leaving it without ``commit`` rolls back."""

    @property
    def users(self) -> Users: ...

    @property
    def clients(self) -> Clients: ...

    @property
    def signing_keys(self) -> SigningKeys: ...

    @property
    def grants(self) -> Grants: ...

    @property
    def codes(self) -> AuthorizationCodes: ...

    @property
    def refresh_tokens(self) -> RefreshTokens: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class Passwords(Protocol):
    """A slow, salted password hash (and client secrets, which people choose too)."""

    async def hash(self, password: str) -> str:
        """The hash to store for ``password``."""

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash, as slow as a mismatch and False."""


class Signer(Protocol):
    """Key pairs and signatures of access tokens."""

    def generate(self, kid: str, now: datetime) -> SigningKey:
        """A new key pair, not yet published (its state is set by ``rotate``)."""

    def sign(self, claims: dict[str, Any], key: SigningKey) -> str:
        """A compact JWS of ``claims`` signed with ``key``, naming it by ``kid``."""

    def public_jwk(self, key: SigningKey) -> dict[str, Any]:
        """The public half of ``key`` as a JWK with kid, alg and use=sig."""

    def signed_claims(self, token: str, keys: Sequence[SigningKey]) -> dict[str, Any] | None:
        """The claims of an access token one of ``keys`` signed; None for anything else."""
