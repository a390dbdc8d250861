"""Order-history's tables. Migrations in ``order_history/migrations`` build exactly this schema.

The read model keeps each order as one JSON document (what the API shows, and the stage each
stream reached), with the columns a query filters and sorts by beside it; the archive keeps
every message taken in, as it came.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

from chassis.db import NAMING_CONVENTION
from order_history.domain.model import CUSTOMER_ID_MAX_LENGTH, ORDER_ID_MAX_LENGTH

metadata = MetaData(naming_convention=NAMING_CONVENTION)

order_views = Table(
    "order_views",
    metadata,
    Column("order_id", String(ORDER_ID_MAX_LENGTH), primary_key=True),
    Column("customer_id", String(CUSTOMER_ID_MAX_LENGTH), nullable=True),
    # NULL until the orders service told of the order: it is not listed before.
    Column("status", String(20), nullable=True),
    Column("placed_at", DateTime(timezone=True), nullable=True),
    Column("document", JSON, nullable=False),
    Index("ix_order_views_customer_id_placed_at", "customer_id", "placed_at"),
)

products = Table(
    "products",
    metadata,
    Column("product_id", String(36), primary_key=True),
    Column("sku", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
)

archived_events = Table(
    "archived_events",
    metadata,
    # The order of arrival (SQLite numbers an INTEGER PRIMARY KEY itself; PostgreSQL by identity).
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("topic", String(63), nullable=False),
    Column("key", String(200), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("archived_at", DateTime(timezone=True), nullable=False),
)

projection = Table(
    "projection",
    metadata,
    # One row: the lock a live event and a rebuild take in turn, and when it was last rebuilt.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("rebuilds", Integer, nullable=False),
    Column("rebuilt_at", DateTime(timezone=True), nullable=True),
)
