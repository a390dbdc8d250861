"""One fetch at a time, shared by its callers, with a back-off after failures.

Used by the issuer's keys (:mod:`chassis.auth.keys`) and its revocation list
(:mod:`chassis.auth.revocations`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import TYPE_CHECKING

import aiohttp

from chassis.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

RETRY_AFTER_FAILED_FETCH = 1.0
# What a failed fetch of a key set or a revocation list raises: the network, or a document
# that does not parse (joserfc raises KeyError and TypeError on some odd keys).
_FETCH_FAILURES = (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError)

_log = get_logger("chassis.auth")


class SharedRefresh:
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
            back_off = RETRY_AFTER_FAILED_FETCH * 2 ** min(self._failures - 1, 16)
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
