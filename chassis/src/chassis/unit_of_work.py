"""The unit of work: one transaction per ``async with``; leaving it without ``commit`` rolls back.

A service's port extends ``UnitOfWork`` with its repositories; its adapter extends
``SqlAlchemyUnitOfWork`` and opens those repositories on each new session. Every
``SqlAlchemyUnitOfWork`` also has an ``outbox`` (events published if, and once, the
transaction commits) and an ``inbox`` (messages already handled), see ``chassis.messaging``.

Aggregates record the ``contracts`` events they publish in their ``events`` list; the
adapter names the aggregates a transaction wrote in ``written()``, and ``commit`` moves
their events into the outbox, each on its topic under its key, in that same transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Protocol, Self

from fastapi import Request

from chassis.messaging import outbox as _outbox
from chassis.messaging.inbox import Inbox
from chassis.storage import StorageUnavailableError, storage_unavailable

__all__ = [
    "SqlAlchemyUnitOfWork",
    "StorageUnavailableError",
    "UnitOfWork",
    "request_unit_of_work",
    "storage_unavailable",
]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from contracts.events import Event


class UnitOfWork(Protocol):
    """One transaction; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


def request_unit_of_work(request: Request) -> UnitOfWork:
    """A route's unit of work, from the factory the composition root put on ``app.state``.

    ``Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]``, with the service's own
    ``UnitOfWork`` port as the annotation.
    """
    factory: Callable[[], UnitOfWork] = request.app.state.uow_factory
    return factory()


class RecordsEvents(Protocol):
    """An aggregate that records the events it publishes, until its unit of work takes them."""

    @property
    def events(self) -> list[Event]: ...


class SqlAlchemyUnitOfWork(ABC):
    """A UnitOfWork on an async session: one session, hence one transaction, per ``async with``.

    Subclasses open their repositories on each new session in ``open_repositories``, and
    name the aggregates written in ``written``: their events are published with the commit.
    """

    outbox: _outbox.Outbox
    inbox: Inbox

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @abstractmethod
    def open_repositories(self, session: AsyncSession) -> None:
        """Open this unit of work's repositories on the session of the new transaction."""

    def written(self) -> Iterable[RecordsEvents]:
        """The aggregates this transaction wrote; none unless a subclass says."""
        return ()

    async def __aenter__(self) -> Self:
        self._session = self._sessionmaker()
        self.outbox = _outbox.Outbox()
        self.inbox = Inbox(self._session)
        self.open_repositories(self._session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Closing rolls back whatever was not committed.
        await self._session.close()
        if exc is not None and storage_unavailable(exc):
            raise StorageUnavailableError(str(exc)) from exc

    async def commit(self) -> None:
        """Commit the transaction, with the outbox's events; leaving without this rolls it back."""
        for aggregate in self.written():
            for event in aggregate.events:
                self.outbox.add_event(event.topic, event.key, event)
            aggregate.events.clear()
        wrote_events = await self.outbox.write(self._session)
        await self._session.commit()
        if wrote_events:
            _outbox.committed()
