"""Argon2id password hashes (argon2-cffi), computed off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Passwords:
    """Implements the Passwords port with argon2id; the defaults are RFC 9106's second choice."""

    def __init__(self, *, time_cost: int = 3, memory_cost_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib)
        # Verified against when no account matches, so that costs what a real check costs.
        self._dummy_hash = self._hasher.hash("no account has this password")

    async def hash(self, password: str) -> str:
        # Hashing takes tens of milliseconds of CPU: a thread keeps other requests moving.
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash or self._dummy_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            matches = self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and password_hash != self._dummy_hash
