"""The orders' tables. Migrations in ``orders/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from chassis.db import NAMING_CONVENTION
from orders.domain.model import (
    CARD_TOKEN_MAX_LENGTH,
    ID_MAX_LENGTH,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    MAX_QUANTITY,
)

STEP_MAX_LENGTH = 32

# Named constraints, so migrations can refer to them on every backend (SQLite included).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(ID_MAX_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("card_token", String(CARD_TOKEN_MAX_LENGTH), nullable=False),
    Column("reason", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("payment_id", String(100), nullable=True),
    Column("step_in_progress", String(STEP_MAX_LENGTH), nullable=True),
    # When the step in progress is given up on, if it is a forward step.
    Column("step_deadline", DateTime(timezone=True), nullable=True),
    # Follows from the rest; stored so the checkout finds the orders it has work on.
    Column("settled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_orders_customer_id_created_at", "customer_id", "created_at"),
    Index("ix_orders_settled_updated_at", "settled", "updated_at"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("product_id", String(ID_MAX_LENGTH), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("sku", String(40), nullable=True),
    Column("name", String(200), nullable=True),
    Column("unit_price_amount", BigInteger, nullable=True),
    Column("unit_price_currency", CHAR(3), nullable=True),
    CheckConstraint(f"quantity BETWEEN 1 AND {MAX_QUANTITY}", name="quantity_in_range"),
)

checkout_steps = Table(
    "checkout_steps",
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("step", String(STEP_MAX_LENGTH), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(IDEMPOTENCY_KEY_MAX_LENGTH), primary_key=True),
    Column("request_fingerprint", CHAR(64), nullable=False),
    Column("order_id", String(36), ForeignKey("orders.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
