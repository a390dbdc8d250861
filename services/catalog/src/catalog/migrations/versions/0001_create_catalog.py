"""Create the catalog: categories (with the shop's taxonomy) and products.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The shop's shelves are reference data, versioned with the schema rather than seeded:
# a catalog without demo products still has somewhere to file new ones.
CATEGORIES = [
    {"slug": "spices", "name": "Spices"},
    {"slug": "tea-coffee", "name": "Tea & coffee"},
    {"slug": "ceramics", "name": "Ceramics"},
    {"slug": "textiles", "name": "Textiles"},
    {"slug": "lamps-lanterns", "name": "Lamps & lanterns"},
    {"slug": "leather", "name": "Leather goods"},
    {"slug": "jewellery", "name": "Jewellery"},
    {"slug": "rugs", "name": "Rugs & kilims"},
    {"slug": "soaps-cosmetics", "name": "Soaps & cosmetics"},
]


def upgrade() -> None:
    categories = op.create_table(
        "categories",
        sa.Column("slug", sa.String(50), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("slug", name="pk_categories"),
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("sku", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("price_amount", sa.BigInteger(), nullable=False),
        sa.Column("price_currency", sa.CHAR(3), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_products"),
        sa.UniqueConstraint("sku", name="uq_products_sku"),
        sa.ForeignKeyConstraint(
            ["category"], ["categories.slug"], name="fk_products_category_categories"
        ),
        sa.CheckConstraint("price_amount >= 0", name="ck_products_price_not_negative"),
    )
    op.create_index("ix_products_category", "products", ["category"])
    op.bulk_insert(categories, CATEGORIES)


def downgrade() -> None:
    op.drop_index("ix_products_category", table_name="products")
    op.drop_table("products")
    op.drop_table("categories")
