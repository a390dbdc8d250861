"""Create the inventory: stock per SKU, reservations and their lines.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock",
        sa.Column("sku", sa.String(40), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_stock"),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
        sa.CheckConstraint("on_hand >= reserved", name="ck_stock_reserved_within_on_hand"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
    )
    op.create_index(
        "ix_reservations_status_expires_at_ms", "reservations", ["status", "expires_at_ms"]
    )
    op.create_table(
        "reservation_lines",
        sa.Column("reservation_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(40), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id", "sku", name="pk_reservation_lines"),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name="fk_reservation_lines_reservation_id_reservations",
        ),
        sa.ForeignKeyConstraint(["sku"], ["stock.sku"], name="fk_reservation_lines_sku_stock"),
        sa.CheckConstraint("quantity > 0", name="ck_reservation_lines_quantity_positive"),
    )


def downgrade() -> None:
    op.drop_table("reservation_lines")
    op.drop_index("ix_reservations_status_expires_at_ms", table_name="reservations")
    op.drop_table("reservations")
    op.drop_table("stock")
