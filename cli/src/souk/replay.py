"""Rebuilding a read model from scratch, over its service's internal routes (`souk replay`).

A service with a read model (order-history) keeps every message it took in, in an archive in
its own database, committed with the message's effect. A rebuild re-reads that archive (not
the broker, which forgets what every group has acknowledged) into a new model that replaces
the old one in one transaction. The service runs it in the background; this module starts it
on one ready instance and follows that instance's progress until it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

ROUTE = "/internal/rebuild"
POLL_INTERVAL = 0.2


class RebuildStatus(BaseModel):
    """Where a rebuild stands, as the service's rebuild route tells."""

    model_config = ConfigDict(frozen=True)

    state: Literal["running", "done", "failed"]
    started_at: datetime
    done: int
    total: int
    seconds: float
    orders: int | None = None
    products: int | None = None
    error: str | None = None


class ReplayError(Exception):
    """A rebuild could not be started, could not be followed, or failed."""


class Rebuild:
    """The rebuild of one service's read model, on whichever ready instance takes it first."""

    def __init__(self, service: str, urls: list[str], client: httpx.AsyncClient) -> None:
        self.service = service
        self._urls = urls
        self._client = client

    async def run(
        self,
        on_progress: Callable[[RebuildStatus], None] | None = None,
        *,
        poll_interval: float = POLL_INTERVAL,
    ) -> RebuildStatus:
        """Start a rebuild and follow it to its end; ReplayError unless it ends done."""
        url, status = await self._start()
        while status.state == "running":
            if on_progress is not None:
                on_progress(status)
            await asyncio.sleep(poll_interval)
            status = self._status(await self._call("GET", url))
        if status.state == "failed":
            raise ReplayError(f"{self.service}: the rebuild failed: {status.error}")
        return status

    async def _start(self) -> tuple[str, RebuildStatus]:
        if not self._urls:
            raise ReplayError(f"{self.service}: no instance is ready")
        failures = []
        for url in self._urls:
            try:
                response = await self._call("POST", url)
            except ReplayError as exc:
                failures.append(str(exc))
                continue
            if response.status_code == 404:
                raise ReplayError(
                    f"{self.service} keeps no event archive to replay: it has no read model"
                )
            if response.status_code == 409:
                raise ReplayError(f"{self.service}: a rebuild is running already")
            return url, self._status(response)
        raise ReplayError(f"{self.service}: no instance answered ({'; '.join(failures)})")

    async def _call(self, method: str, url: str) -> httpx.Response:
        try:
            return await self._client.request(method, url + ROUTE)
        except httpx.TransportError as exc:
            raise ReplayError(f"{url}{ROUTE}: {str(exc) or type(exc).__name__}") from exc

    def _status(self, response: httpx.Response) -> RebuildStatus:
        body: Any = None
        try:
            body = response.json()
            if response.is_success:
                return RebuildStatus.model_validate(body)
        except (ValueError, ValidationError):
            pass
        detail = body.get("detail") if isinstance(body, dict) else None
        raise ReplayError(
            f"{self.service}: unexpected answer {response.status_code} from {ROUTE}"
            + (f": {detail}" if detail else "")
        )
