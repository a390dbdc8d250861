"""Create order-history: the read model (order views, products), the event archive it is
rebuilt from, the projection's lock row, and the chassis's messaging tables (its dead
letters; the archive, not the inbox, tells a message already taken in).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chassis.messaging.tables import create_messaging_tables_v1, drop_messaging_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_views",
        sa.Column("order_id", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_views"),
    )
    op.create_index(
        "ix_order_views_customer_id_placed_at", "order_views", ["customer_id", "placed_at"]
    )
    op.create_table(
        "products",
        sa.Column("product_id", sa.String(36), nullable=False),
        sa.Column("sku", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("product_id", name="pk_products"),
    )
    op.create_table(
        "archived_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(63), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_archived_events"),
        sa.UniqueConstraint("message_id", name="uq_archived_events_message_id"),
    )
    projection = op.create_table(
        "projection",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rebuilds", sa.Integer(), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_projection"),
    )
    op.bulk_insert(projection, [{"id": 1, "rebuilds": 0, "rebuilt_at": None}])
    create_messaging_tables_v1(op)


def downgrade() -> None:
    drop_messaging_tables_v1(op)
    op.drop_table("projection")
    op.drop_table("archived_events")
    op.drop_table("products")
    op.drop_index("ix_order_views_customer_id_placed_at", table_name="order_views")
    op.drop_table("order_views")
