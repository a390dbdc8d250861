"""bff-mobile's one table. Migrations in ``bff_mobile/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

from chassis.db import NAMING_CONVENTION, UTCDateTime

CUSTOMER_ID_MAX_LENGTH = 100
PRODUCT_ID_MAX_LENGTH = 100

metadata = MetaData(naming_convention=NAMING_CONVENTION)

cart_lines = Table(
    "cart_lines",
    metadata,
    # The access token's subject: a customer's cart follows them from phone to phone.
    Column("customer_id", String(CUSTOMER_ID_MAX_LENGTH), primary_key=True),
    Column("product_id", String(PRODUCT_ID_MAX_LENGTH), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
)
