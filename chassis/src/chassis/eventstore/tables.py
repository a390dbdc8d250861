"""The event store's tables in a service's database: streams, their events, and snapshots.

A service creates them in one of its migrations with :func:`create_event_store_tables_v1`;
like the messaging tables, the function is versioned and frozen: a later change comes as a
new function for a new migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from chassis.db import NAMING_CONVENTION
from chassis.storage import MigrationOperations

metadata = MetaData(naming_convention=dict(NAMING_CONVENTION))

STREAM_ID_MAX_LENGTH = 200

# BigInteger on PostgreSQL, INTEGER (hence an alias of the rowid) on SQLite.
_Position = BigInteger().with_variant(Integer(), "sqlite")
_Json = JSON().with_variant(JSONB(), "postgresql")

# One row per stream, holding its version: appending moves it from the expected version to
# the new one in a single UPDATE ... WHERE version = expected, so of two writers who read the
# same version exactly one moves it (the other's UPDATE finds no row: a conflict, no error).
streams = Table(
    "souk_streams",
    metadata,
    Column("stream_id", String(STREAM_ID_MAX_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
)

events = Table(
    "souk_events",
    metadata,
    # The order of appends across streams (not gapless: the outbox publishes, nobody tails this).
    Column("position", _Position, primary_key=True, autoincrement=True),
    Column("stream_id", String(STREAM_ID_MAX_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", _Json, nullable=False),
    Column("causation_id", String(64)),
    Column("correlation_id", String(64)),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # A second line of defence behind souk_streams: no stream ever holds two events at one version.
    UniqueConstraint("stream_id", "version"),
)

# Snapshots are kept per format: an aggregate whose state changed shape bumps its format and
# simply never reads the older ones.
snapshots = Table(
    "souk_snapshots",
    metadata,
    Column("stream_id", String(STREAM_ID_MAX_LENGTH), nullable=False),
    Column("format", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", _Json, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("stream_id", "format", "version"),
)

_V1_TABLES = [streams, events, snapshots]


def create_event_store_tables_v1(op: MigrationOperations) -> None:
    """Create the streams, events and snapshots tables (call from a service's migration)."""
    metadata.create_all(op.get_bind(), tables=_V1_TABLES)


def drop_event_store_tables_v1(op: MigrationOperations) -> None:
    """Drop what :func:`create_event_store_tables_v1` created (a migration's downgrade)."""
    metadata.drop_all(op.get_bind(), tables=_V1_TABLES)
