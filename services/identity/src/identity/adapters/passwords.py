"""Argon2id password hashes (argon2-cffi), computed off the event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from identity.domain.errors import PasswordChecksBusy

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")


class Argon2Passwords:
    """Implements the Passwords port with argon2id; the defaults are RFC 9106's second choice."""

    def __init__(
        self,
        *,
        time_cost: int = 3,
        memory_cost_kib: int = 65536,
        max_concurrent: int = 4,
        max_waiting: int = 32,
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib)
        # Verified against when no account matches, so that costs what a real check costs.
        self._dummy_hash = self._hasher.hash("no account has this password")
        # A bulkhead: each hash holds memory_cost_kib of memory, so at most max_concurrent
        # run at once; max_waiting more may queue, anyone beyond is turned away at once.
        self._slots = asyncio.Semaphore(max_concurrent)
        self._max_waiting = max_waiting
        self._waiting = 0

    async def hash(self, password: str) -> str:
        # Hashing takes tens of milliseconds of CPU: a thread keeps other requests moving.
        return await self._bounded(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._bounded(self._verify, password_hash or self._dummy_hash, password)

    async def _bounded(self, work: Callable[..., _T], *args: str) -> _T:
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise PasswordChecksBusy
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self._slots.release()

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            matches = self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and password_hash != self._dummy_hash
