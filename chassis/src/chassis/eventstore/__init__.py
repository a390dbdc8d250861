"""Event sourcing on the chassis's database: streams with optimistic concurrency, aggregates
folded from them, snapshots, and the outbox fed in the same transaction (ADR 10).

A service creates the tables in a migration with ``tables.create_event_store_tables_v1(op)``.
"""

from __future__ import annotations

from chassis.eventstore.aggregates import AggregateStore, EventCodec, EventSourced, SnapshotCodec
from chassis.eventstore.retry import retry_on_conflict
from chassis.eventstore.store import (
    ConcurrencyConflict,
    EventStore,
    NewEvent,
    Publication,
    RecordedEvent,
    Snapshot,
    publish_on,
)

__all__ = [
    "AggregateStore",
    "ConcurrencyConflict",
    "EventCodec",
    "EventSourced",
    "EventStore",
    "NewEvent",
    "Publication",
    "RecordedEvent",
    "Snapshot",
    "SnapshotCodec",
    "publish_on",
    "retry_on_conflict",
]
