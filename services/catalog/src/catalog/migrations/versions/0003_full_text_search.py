"""Full-text search over the products, with each backend's own engine.

SQLite: an FTS5 table over name, category and description (Porter stemming, accents
folded), an external-content index of ``products`` kept current by triggers. PostgreSQL: a
stored generated ``tsvector`` (English stemming; name weighted A, category B, description
C) with a GIN index. The category is indexed as its slug, whose words ("lamps-lanterns")
are the shelf's. See docs/adr/0026-storefront-search-and-checkout.md.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SQLITE_UP = (
    "CREATE VIRTUAL TABLE products_fts USING fts5(name, category, description, "
    "content='products', content_rowid='rowid', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN "
    "INSERT INTO products_fts(rowid, name, category, description) "
    "VALUES (new.rowid, new.name, new.category, new.description); END",
    "CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN "
    "INSERT INTO products_fts(products_fts, rowid, name, category, description) "
    "VALUES ('delete', old.rowid, old.name, old.category, old.description); END",
    "CREATE TRIGGER products_fts_update AFTER UPDATE ON products BEGIN "
    "INSERT INTO products_fts(products_fts, rowid, name, category, description) "
    "VALUES ('delete', old.rowid, old.name, old.category, old.description); "
    "INSERT INTO products_fts(rowid, name, category, description) "
    "VALUES (new.rowid, new.name, new.category, new.description); END",
    # The products already there.
    "INSERT INTO products_fts(products_fts) VALUES ('rebuild')",
)
_SQLITE_DOWN = (
    "DROP TRIGGER products_fts_update",
    "DROP TRIGGER products_fts_delete",
    "DROP TRIGGER products_fts_insert",
    "DROP TABLE products_fts",
)
_POSTGRES_UP = (
    "ALTER TABLE products ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, name), 'A') || "
    "setweight(to_tsvector('english'::regconfig, replace(category, '-', ' ')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, description), 'C')) STORED",
    "CREATE INDEX ix_products_search_vector ON products USING gin (search_vector)",
)
_POSTGRES_DOWN = (
    "DROP INDEX ix_products_search_vector",
    "ALTER TABLE products DROP COLUMN search_vector",
)


def _run(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(_SQLITE_UP)
    elif dialect == "postgresql":
        _run(_POSTGRES_UP)
    else:
        raise NotImplementedError(f"catalog search needs SQLite or PostgreSQL, not {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _run(_SQLITE_DOWN if dialect == "sqlite" else _POSTGRES_DOWN)
