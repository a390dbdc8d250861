"""Aggregates stored as streams: rebuilt by folding their events, from a snapshot if one fits.

A service's domain stays plain Python: its aggregate need not import anything from here, it
only has to look like :class:`EventSourced`. The service's adapters give an
:class:`AggregateStore` the codecs that turn its domain events and state into JSON and back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from chassis.eventstore.store import Snapshot

if TYPE_CHECKING:
    from chassis.eventstore.store import EventStore, NewEvent, RecordedEvent

E = TypeVar("E")
A = TypeVar("A", bound="EventSourced[Any]")


class EventSourced(Protocol[E]):
    """What the store needs of an aggregate.

    ``apply`` folds one event into the state and counts it in ``version``; a command method
    records a new event by applying it and adding it to ``pending_events``, which the store
    appends (at ``version - len(pending_events)``) and then clears.
    """

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def pending_events(self) -> list[E]: ...

    def apply(self, event: E) -> None: ...


class EventCodec(Protocol[E]):
    """Turns an aggregate's domain events into events to append, and recorded ones back."""

    def encode(self, event: E) -> NewEvent: ...

    def decode(self, event: RecordedEvent) -> E: ...


class SnapshotCodec(Protocol[A]):
    """Turns an aggregate's state into JSON and back.

    ``format`` names the shape of that JSON: bump it whenever the state changes shape, and
    the snapshots in older formats are ignored (the stream is replayed instead).
    """

    @property
    def format(self) -> int: ...

    def state_of(self, aggregate: A) -> Mapping[str, Any]: ...

    def restore(self, aggregate_id: str, version: int, state: Mapping[str, Any]) -> A: ...


class AggregateStore(Generic[A, E]):
    """Loads and saves one kind of aggregate, each as the stream ``<category>-<id>``.

    With ``snapshots`` and ``snapshot_every=N``, a save that takes a stream past a multiple
    of N events also stores a snapshot, in the same transaction; a load starts from the
    newest snapshot in the codec's format and folds only the events after it.
    """

    def __init__(
        self,
        events: EventStore,
        *,
        category: str,
        create: Callable[[str], A],
        codec: EventCodec[E],
        snapshots: SnapshotCodec[A] | None = None,
        snapshot_every: int = 0,
    ) -> None:
        if snapshot_every < 0:
            raise ValueError("snapshot_every is a number of events (0: never)")
        if snapshot_every and snapshots is None:
            raise ValueError("taking snapshots needs a snapshot codec")
        self.events = events
        self._category = category
        self._create = create
        self._codec = codec
        self._snapshots = snapshots
        self._snapshot_every = snapshot_every

    def stream_id(self, aggregate_id: str) -> str:
        """The stream that holds the aggregate's events."""
        return f"{self._category}-{aggregate_id}"

    async def get(self, aggregate_id: str) -> A:
        """The aggregate as its events made it (version 0, as ``create`` makes it, if none)."""
        stream_id = self.stream_id(aggregate_id)
        aggregate: A | None = None
        after = 0
        if self._snapshots is not None:
            snapshot = await self.events.latest_snapshot(stream_id, format=self._snapshots.format)
            if snapshot is not None:
                aggregate = self._snapshots.restore(aggregate_id, snapshot.version, snapshot.state)
                after = snapshot.version
        if aggregate is None:
            aggregate = self._create(aggregate_id)
        for event in await self.events.load(stream_id, after=after):
            aggregate.apply(self._codec.decode(event))
        return aggregate

    async def replay(self, aggregate_id: str) -> A:
        """The aggregate folded from all its events, ignoring snapshots (to check them)."""
        aggregate = self._create(aggregate_id)
        for event in await self.events.load(self.stream_id(aggregate_id)):
            aggregate.apply(self._codec.decode(event))
        return aggregate

    async def save(self, aggregate: A) -> list[RecordedEvent]:
        """Append the aggregate's pending events; raises ConcurrencyConflict if it is stale."""
        pending = aggregate.pending_events
        if not pending:
            return []
        expected = aggregate.version - len(pending)
        recorded = await self.events.append(
            self.stream_id(aggregate.id), expected, [self._codec.encode(e) for e in pending]
        )
        pending.clear()
        every = self._snapshot_every
        if self._snapshots is not None and every and aggregate.version // every > expected // every:
            await self.events.save_snapshot(
                Snapshot(
                    stream_id=self.stream_id(aggregate.id),
                    version=aggregate.version,
                    format=self._snapshots.format,
                    state=self._snapshots.state_of(aggregate),
                )
            )
        return recorded
