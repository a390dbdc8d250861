"""A small event-sourced aggregate for the tests: a purse of coins that never goes below zero."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.eventstore import AggregateStore, EventStore, NewEvent, RecordedEvent, publish_on
from chassis.unit_of_work import SqlAlchemyUnitOfWork

TOPIC = "purses"


@dataclass(frozen=True, slots=True)
class CoinsAdded:
    coins: int


@dataclass(frozen=True, slots=True)
class CoinsSpent:
    coins: int


PurseEvent = CoinsAdded | CoinsSpent


class NotEnoughCoins(Exception):  # noqa: N818 - a refusal, in the purse's words
    pass


class Purse:
    """Coins in, coins out; ``history`` keeps every change, so states compare in full."""

    def __init__(self, id: str) -> None:  # noqa: A002 - the aggregate's identity
        self.id = id
        self.version = 0
        self.coins = 0
        self.history: list[int] = []
        self.pending_events: list[PurseEvent] = []

    def add(self, coins: int) -> None:
        self._record(CoinsAdded(coins))

    def spend(self, coins: int) -> None:
        if coins > self.coins:
            raise NotEnoughCoins(f"{coins} wanted, {self.coins} in the purse")
        self._record(CoinsSpent(coins))

    def apply(self, event: PurseEvent) -> None:
        change = event.coins if isinstance(event, CoinsAdded) else -event.coins
        self.coins += change
        self.history.append(change)
        self.version += 1

    def _record(self, event: PurseEvent) -> None:
        self.apply(event)
        self.pending_events.append(event)


class PurseEvents:
    """The event codec."""

    def encode(self, event: PurseEvent) -> NewEvent:
        return NewEvent(type(event).__name__, {"coins": event.coins})

    def decode(self, event: RecordedEvent) -> PurseEvent:
        kind = CoinsAdded if event.event_type == "CoinsAdded" else CoinsSpent
        return kind(event.data["coins"])


class PurseSnapshots:
    """The snapshot codec; ``format`` can be changed to play a purse whose state changed."""

    def __init__(self, format: int = 1) -> None:  # noqa: A002 - the protocol's name
        self.format = format
        self.restored = 0

    def state_of(self, purse: Purse) -> Mapping[str, Any]:
        return {"coins": purse.coins, "history": purse.history}

    def restore(self, purse_id: str, version: int, state: Mapping[str, Any]) -> Purse:
        self.restored += 1
        purse = Purse(purse_id)
        purse.version = version
        purse.coins = state["coins"]
        purse.history = list(state["history"])
        return purse


class PursesUnitOfWork(SqlAlchemyUnitOfWork):
    """Purses in the event store; their events published on ``purses`` through the outbox."""

    purses: AggregateStore[Purse, PurseEvent]
    session: AsyncSession

    def __init__(self, *args: Any, snapshots: PurseSnapshots | None = None, every: int = 0) -> None:
        super().__init__(*args)
        self._snapshots = snapshots
        self._every = every

    def open_repositories(self, session: AsyncSession) -> None:
        self.session = session
        self.purses = AggregateStore(
            EventStore(session, outbox=self.outbox, publish=publish_on(TOPIC)),
            category="purse",
            create=Purse,
            codec=PurseEvents(),
            snapshots=self._snapshots,
            snapshot_every=self._every,
        )
