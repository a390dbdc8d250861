"""Create the chassis's event-store tables: customers' accounts are stored as their entries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

from chassis.eventstore.tables import create_event_store_tables_v1, drop_event_store_tables_v1

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_store_tables_v1(op)


def downgrade() -> None:
    drop_event_store_tables_v1(op)
