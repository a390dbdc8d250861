"""Billing's tables. Migrations in ``billing/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    false,
    text,
)

from billing.domain.model import CUSTOMER_ID_MAX_LENGTH, ORDER_ID_MAX_LENGTH
from chassis.db import NAMING_CONVENTION, UTCDateTime
from chassis.idempotency import idempotency_keys_table

# Named constraints, so migrations can refer to them on every backend (SQLite included).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

payments = Table(
    "payments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(ORDER_ID_MAX_LENGTH), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("provider_reference", String(100), nullable=True),
    Column("decline_reason", String(200), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("customer_id", String(CUSTOMER_ID_MAX_LENGTH), nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
)

# The chassis's key store (its primary key is what stops two concurrent requests with one key
# from both charging), with billing's claim on the providers: the payment, the lease, and
# what reconciliation learnt.
idempotency_keys = idempotency_keys_table(
    metadata,
    Column("payment_id", String(36), nullable=False, unique=True),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("version", Integer, nullable=False),
    Column("asked_provider", String(64), nullable=True),
    Column("settled", Boolean, nullable=False, server_default=false()),
    Column("empty_lookups", Integer, nullable=False, server_default=text("0")),
)
