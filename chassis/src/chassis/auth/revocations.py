"""The grants the issuer revoked lately: a token issued from one is refused."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import aiohttp

from chassis.auth.refresh import SharedRefresh
from chassis.logs import get_logger
from chassis.tracing import client_tracing

if TYPE_CHECKING:
    from collections.abc import Callable

_LONGEST_BACK_OFF = 30.0

_log = get_logger("chassis.auth")


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
        self._refresh = SharedRefresh(
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
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trace_configs=[client_tracing()]
            )
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
