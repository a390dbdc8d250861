"""A bulkhead: at most so many calls to one dependency at once, a short bounded wait, then no.

No maintained library offers one for asyncio (an ``asyncio.Semaphore`` with a bounded queue is
the norm): a slow dependency then ties up ``max_concurrent`` tasks, not every task there is.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class BulkheadFull(Exception):  # noqa: N818 - a state of the dependency, not a bug of ours
    """Too many calls to the dependency are already out: nothing was sent."""

    def __init__(self, dependency: str, limit: int) -> None:
        super().__init__(f"{dependency}: {limit} calls already in flight")
        self.dependency = dependency
        self.limit = limit


class Bulkhead:
    """``max_concurrent`` calls at once; up to ``max_waiting`` more wait ``max_wait`` seconds."""

    def __init__(
        self,
        dependency: str,
        *,
        max_concurrent: int,
        max_waiting: int = 0,
        max_wait: float = 0.0,
    ) -> None:
        self.dependency = dependency
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.max_wait = max_wait
        self._slots = asyncio.Semaphore(max_concurrent)
        self.in_flight = 0
        self.waiting = 0
        self.rejected = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the block; raises BulkheadFull when none comes in time."""
        if self._slots.locked():
            if self.waiting >= self.max_waiting or self.max_wait <= 0:
                self.rejected += 1
                raise BulkheadFull(self.dependency, self.max_concurrent)
            self.waiting += 1
            try:
                async with asyncio.timeout(self.max_wait):
                    await self._slots.acquire()
            except TimeoutError:
                self.rejected += 1
                raise BulkheadFull(self.dependency, self.max_concurrent) from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._slots.release()
