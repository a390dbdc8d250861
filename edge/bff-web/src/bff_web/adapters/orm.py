"""bff-web's one table. Migrations in ``bff_web/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text

from chassis.db import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

sessions = Table(
    "sessions",
    metadata,
    # The SHA-256 of the cookie's value: a copy of this table opens no browser's session.
    Column("id_digest", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_sessions_expires_at", "expires_at"),
)
