"""The orders' tables beside the event store's (``chassis.eventstore.tables``): the index
the listings read, the card tokens kept until the payment is authorized, and the
Idempotency-Keys. Migrations in ``orders/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from chassis.db import NAMING_CONVENTION, UTCDateTime
from chassis.idempotency import idempotency_keys_table
from orders.domain.model import CARD_TOKEN_MAX_LENGTH, ID_MAX_LENGTH

# Named constraints, so migrations can refer to them on every backend (SQLite included).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

# One row per order, written in the transaction that appends to its stream: what a customer's
# listing pages through (newest first, by keyset). The order itself is its stream.
orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(ID_MAX_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("settled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_orders_customer_id_created_at", "customer_id", "created_at"),
    Index("ix_orders_settled_updated_at", "settled", "updated_at"),
)

# Never in an event: deleted once the payment is authorized or refused.
order_card_tokens = Table(
    "order_card_tokens",
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id"), primary_key=True),
    Column("card_token", String(CARD_TOKEN_MAX_LENGTH), nullable=False),
)

# The chassis's key store; what a key placed is an order of this table.
idempotency_keys = idempotency_keys_table(
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
