"""The chassis's own tables in a service's database: outbox, inbox and dead letters.

A service creates them in one of its migrations with :func:`create_messaging_tables_v1`;
the function is versioned and frozen, as a migration must be: a later change to these
tables comes as a new function for a new migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from chassis.db import NAMING_CONVENTION
from chassis.storage import MigrationOperations

__all__ = [
    "MigrationOperations",
    "create_messaging_tables_v1",
    "dead_letters",
    "drop_messaging_tables_v1",
    "inbox",
    "metadata",
    "outbox",
    "outbox_relay_lease",
]

metadata = MetaData(naming_convention=dict(NAMING_CONVENTION))

# BigInteger on PostgreSQL, INTEGER (hence an alias of the rowid) on SQLite.
_Id = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "souk_outbox",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("topic", String(63), nullable=False),
    Column("key", String(200), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), index=True),
)

outbox_relay_lease = Table(
    "souk_outbox_relay_lease",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

inbox = Table(
    "souk_inbox",
    metadata,
    Column("consumer_group", String(63), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("handled_at", DateTime(timezone=True), nullable=False),
)

dead_letters = Table(
    "souk_dead_letters",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("consumer_group", String(63), nullable=False),
    Column("topic", String(63), nullable=False),
    Column("key", String(200), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Column("buried_at", DateTime(timezone=True), nullable=False),
    Column("replayed_at", DateTime(timezone=True)),
)


_V1_TABLES = [outbox, outbox_relay_lease, inbox, dead_letters]


def create_messaging_tables_v1(op: MigrationOperations) -> None:
    """Create the outbox, inbox and dead-letter tables (call from a service's migration)."""
    metadata.create_all(op.get_bind(), tables=_V1_TABLES)


def drop_messaging_tables_v1(op: MigrationOperations) -> None:
    """Drop what :func:`create_messaging_tables_v1` created (a migration's downgrade)."""
    metadata.drop_all(op.get_bind(), tables=_V1_TABLES)
