"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from identity.domain.errors import EmailTaken
from identity.domain.model import (
    AuthorizationCode,
    Client,
    Grant,
    KeyState,
    RefreshToken,
    SigningKey,
    User,
)

if TYPE_CHECKING:
    from types import TracebackType


@dataclass
class FakeStore:
    """What the fake database holds once committed."""

    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, Client] = field(default_factory=dict)
    signing_keys: dict[str, SigningKey] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)


class FakeTable:
    """One table of a transaction's copy of the store: what it sees, and what it changes."""

    def __init__(self, rows: dict[str, Any]) -> None:
        self.rows = rows

    async def get(self, key: str) -> Any:
        return copy.deepcopy(self.rows.get(key))


class FakeUsers(FakeTable):
    async def add(self, user: User) -> None:
        if any(known.email == user.email for known in self.rows.values()):
            raise EmailTaken
        self.rows[user.id] = user

    async def by_email(self, email: str) -> User | None:
        return next((user for user in self.rows.values() if user.email == email), None)


class FakeClients(FakeTable):
    async def put(self, client: Client) -> None:
        self.rows[client.client_id] = client


class FakeSigningKeys(FakeTable):
    async def all(self) -> list[SigningKey]:
        return [copy.deepcopy(key) for key in self.rows.values()]

    async def add(self, key: SigningKey) -> None:
        self.rows[key.kid] = copy.deepcopy(key)

    async def save(self, key: SigningKey) -> None:
        self.rows[key.kid] = copy.deepcopy(key)


class FakeGrants(FakeTable):
    async def add(self, grant: Grant) -> None:
        self.rows[grant.id] = copy.deepcopy(grant)

    async def save(self, grant: Grant) -> None:
        self.rows[grant.id] = copy.deepcopy(grant)


class FakeUsedOnce(FakeTable):
    """Codes or refresh tokens, each claimed at most once."""

    async def add(self, item: AuthorizationCode | RefreshToken) -> None:
        key = item.code_hash if isinstance(item, AuthorizationCode) else item.token_hash
        self.rows[key] = copy.deepcopy(item)

    async def claim(self, key: str, now: datetime) -> bool:
        item = self.rows.get(key)
        if item is None or item.used_at is not None:
            return False
        item.used_at = now
        return True


class FakeUnitOfWork:
    """Each ``async with`` works on a copy of the store that only ``commit`` puts back."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    async def __aenter__(self) -> Self:
        self._copy = copy.deepcopy(self.store)
        self.users = FakeUsers(self._copy.users)
        self.clients = FakeClients(self._copy.clients)
        self.signing_keys = FakeSigningKeys(self._copy.signing_keys)
        self.grants = FakeGrants(self._copy.grants)
        self.codes = FakeUsedOnce(self._copy.codes)
        self.refresh_tokens = FakeUsedOnce(self._copy.refresh_tokens)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._copy

    async def commit(self) -> None:
        for name in ("users", "clients", "signing_keys", "grants", "codes", "refresh_tokens"):
            setattr(self.store, name, copy.deepcopy(getattr(self._copy, name)))


class FakePasswords:
    """A reversible 'hash', so that tests run fast; never a real one."""

    async def hash(self, password: str) -> str:
        return f"hashed:{password}"

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return password_hash == f"hashed:{password}"


class FakeSigner:
    """'Signs' by naming the key and the claims: enough to see which key signed what."""

    def generate(self, kid: str, now: datetime) -> SigningKey:
        return SigningKey(kid, "ES256", {"kid": kid}, KeyState.NEXT, now)

    def sign(self, claims: dict[str, Any], key: SigningKey) -> str:
        return f"{key.kid}:{claims['sub']}:{claims['scope']}:{claims['jti']}"

    def public_jwk(self, key: SigningKey) -> dict[str, Any]:
        return {"kid": key.kid, "alg": key.alg, "use": "sig"}
