"""Notifications' tables. Migrations in ``notifications/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table, Text

from chassis.db import NAMING_CONVENTION, UTCDateTime
from notifications.domain.model import CUSTOMER_ID_MAX_LENGTH

ORDER_ID_MAX_LENGTH = 100

metadata = MetaData(naming_convention=NAMING_CONVENTION)

notifications = Table(
    "notifications",
    metadata,
    # The id of the message the notification came from.
    Column("id", String(64), primary_key=True),
    Column("customer_id", String(CUSTOMER_ID_MAX_LENGTH), nullable=False),
    Column("order_id", String(ORDER_ID_MAX_LENGTH), nullable=False),
    Column("subject", String(100), nullable=False),
    Column("text", Text, nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Index("ix_notifications_customer_id_occurred_at", "customer_id", "occurred_at"),
)

order_customers = Table(
    "order_customers",
    metadata,
    Column("order_id", String(ORDER_ID_MAX_LENGTH), primary_key=True),
    Column("customer_id", String(CUSTOMER_ID_MAX_LENGTH), nullable=False),
)
