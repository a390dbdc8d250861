"""Alembic environment: the chassis applies the catalog's migrations at start-up."""

from catalog.adapters.orm import metadata
from chassis.db import run_migrations

run_migrations(metadata)
