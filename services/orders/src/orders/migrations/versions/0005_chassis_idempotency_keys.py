"""The Idempotency-Keys in the chassis's table shape: ``fingerprint``, keys up to 255.

``request_fingerprint`` is renamed ``fingerprint`` and the key column widened from 128 to
255 characters, as billing's is (``chassis.idempotency.store``); every stored key keeps its
row, its fingerprint and its order.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("request_fingerprint", new_column_name="fingerprint")
        batch.alter_column(
            "key", existing_type=sa.String(128), type_=sa.String(255), existing_nullable=False
        )


def downgrade() -> None:
    # A key longer than 128 characters stored since would not fit: refuse rather than cut it.
    bind = op.get_bind()
    longest = bind.execute(sa.text("SELECT max(length(key)) FROM idempotency_keys")).scalar()
    if longest is not None and longest > 128:
        raise RuntimeError("idempotency_keys holds keys over 128 characters; cannot downgrade")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column(
            "key", existing_type=sa.String(255), type_=sa.String(128), existing_nullable=False
        )
        batch.alter_column("fingerprint", new_column_name="request_fingerprint")
