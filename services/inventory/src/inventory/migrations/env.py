"""Alembic environment: the chassis applies the inventory's migrations at start-up."""

from chassis.db import run_migrations
from inventory.adapters.orm import metadata

run_migrations(metadata)
