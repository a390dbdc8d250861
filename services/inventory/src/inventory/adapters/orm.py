"""The inventory's tables. Migrations in ``inventory/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    MetaData,
    String,
    Table,
)

from chassis.db import NAMING_CONVENTION
from inventory.domain.model import RESERVATION_ID_MAX_LENGTH, SKU_MAX_LENGTH

# Named constraints, so migrations can refer to them on every backend (SQLite included).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

stock = Table(
    "stock",
    metadata,
    Column("sku", String(SKU_MAX_LENGTH), primary_key=True),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    # The last line of defence: the repositories' conditional updates never get here.
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
    CheckConstraint("on_hand >= reserved", name="reserved_within_on_hand"),
)

reservations = Table(
    "reservations",
    metadata,
    # Chosen by the caller: a second reservation with the same id is refused right here.
    Column("id", String(RESERVATION_ID_MAX_LENGTH), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    # What the expiry sweep looks for: reserved, and past expires_at_ms.
    Index("ix_reservations_status_expires_at_ms", "status", "expires_at_ms"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column(
        "reservation_id",
        String(RESERVATION_ID_MAX_LENGTH),
        ForeignKey("reservations.id"),
        primary_key=True,
    ),
    Column("sku", String(SKU_MAX_LENGTH), ForeignKey("stock.sku"), primary_key=True),
    Column("quantity", BigInteger, nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
