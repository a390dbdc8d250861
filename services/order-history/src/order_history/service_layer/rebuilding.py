"""Rebuilding the read model from the event archive, as `souk replay order-history` asks.

The whole archive is folded, in the order the messages arrived, into views held in memory;
then the stored views are replaced by them, all in one transaction that holds the read
model (:meth:`Projection.lock`). Readers see the old model until the commit and the new one
after it, never a half-built one; live events wait for the commit and are merged into the
rebuilt model. Because each merge is independent of order and repetition (see
``order_history.domain.model``), the rebuilt model is the one the live projection built from
the same messages.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from chassis import get_logger
from order_history.domain.model import History
from order_history.service_layer.handlers import read

if TYPE_CHECKING:
    from collections.abc import Callable

    from order_history.service_layer.ports import UnitOfWork, UnitOfWorkFactory

BATCH: Final = 500

_log = get_logger("order_history.rebuilding")


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """What a rebuild read and made."""

    events: int
    orders: int
    products: int


async def rebuild(uow: UnitOfWork, progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Rebuild the read model from the whole archive; ``progress(done, total)`` after each batch.

    Raises EventError if an archived message can no longer be read; the read model is then
    left as it was.
    """
    history = History()
    done = 0
    tell = progress or _untold
    async with uow:
        await uow.projection.lock()
        total = await uow.archive.count()
        tell(done, total)
        after = 0
        while batch := await uow.archive.after(after, limit=BATCH):
            for archived in batch:
                event = read(archived.message)
                if event is not None:
                    history.apply(event)
            after = batch[-1].seq
            done += len(batch)
            tell(done, total)
        await uow.orders.replace_all(history.orders.values())
        await uow.products.replace_all(history.products.values())
        await uow.projection.rebuilt(datetime.now(UTC))
        await uow.commit()
    return Rebuilt(events=done, orders=len(history.orders), products=len(history.products))


def _untold(done: int, total: int) -> None:
    """Progress nobody follows."""


class RebuildState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RebuildStatus:
    """Where the latest rebuild of this process stands."""

    state: RebuildState
    started_at: datetime
    done: int = 0
    total: int = 0
    seconds: float = 0.0
    result: Rebuilt | None = None
    error: str | None = None


class AlreadyRebuildingError(Exception):
    """A rebuild is running in this process: one at a time."""


class Rebuilds:
    """Runs rebuilds in the background, one at a time, and tells how the latest one goes."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self._uow_factory = uow_factory
        self._status: RebuildStatus | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> RebuildStatus | None:
        """The latest rebuild's status, or None if none was started."""
        return self._status

    def start(self) -> RebuildStatus:
        """Start a rebuild; AlreadyRebuildingError if one is running."""
        if self._task is not None and not self._task.done():
            raise AlreadyRebuildingError("a rebuild of the read model is running already")
        status = self._status = RebuildStatus(RebuildState.RUNNING, started_at=datetime.now(UTC))
        self._task = asyncio.create_task(self._run(status), name="order-history-rebuild")
        return status

    async def finished(self) -> RebuildStatus | None:
        """The latest rebuild's status once it has ended (at once if none is running)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        return self._status

    async def stop(self) -> None:
        """Cancel a running rebuild (its transaction rolls back) and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, status: RebuildStatus) -> None:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            self._status = replace(
                self._status or status, done=done, total=total, seconds=time.monotonic() - started
            )

        try:
            result = await rebuild(self._uow_factory(), progress)
        except Exception as error:  # noqa: BLE001 - told to whoever asks for the status
            _log.exception("rebuilding the read model failed")
            self._status = replace(
                self._status or status,
                state=RebuildState.FAILED,
                error=f"{type(error).__name__}: {error}",
                seconds=time.monotonic() - started,
            )
            return
        _log.info("read model rebuilt", events=result.events, orders=result.orders)
        self._status = replace(
            self._status or status,
            state=RebuildState.DONE,
            result=result,
            seconds=time.monotonic() - started,
        )
