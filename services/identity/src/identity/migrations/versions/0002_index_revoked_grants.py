"""Index grants by revocation time: validators ask every few seconds which were revoked lately.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_grants_revoked_at", "grants", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_grants_revoked_at", table_name="grants")
