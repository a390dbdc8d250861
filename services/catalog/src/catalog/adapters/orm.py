"""The catalog's tables. Migrations in ``catalog/migrations`` build exactly this schema."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from catalog.domain.model import CATEGORY_SLUG_MAX_LENGTH, NAME_MAX_LENGTH, SKU_MAX_LENGTH
from chassis.db import NAMING_CONVENTION

# Named constraints, so migrations can refer to them on every backend (SQLite included).
metadata = MetaData(naming_convention=NAMING_CONVENTION)

categories = Table(
    "categories",
    metadata,
    Column("slug", String(CATEGORY_SLUG_MAX_LENGTH), primary_key=True),
    Column("name", String(100), nullable=False),
)

products = Table(
    "products",
    metadata,
    # A UUID in its text form: portable, and lookups by malformed ids simply find nothing.
    Column("id", String(36), primary_key=True),
    Column("sku", String(SKU_MAX_LENGTH), nullable=False, unique=True),
    Column("name", String(NAME_MAX_LENGTH), nullable=False),
    Column("description", Text, nullable=False),
    Column(
        "category",
        String(CATEGORY_SLUG_MAX_LENGTH),
        ForeignKey("categories.slug"),
        nullable=False,
        index=True,
    ),
    Column("price_amount", BigInteger, nullable=False),
    Column("price_currency", CHAR(3), nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint("price_amount >= 0", name="price_not_negative"),
)
