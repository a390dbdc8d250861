"""Alembic environment: the chassis applies billing's migrations at start-up."""

from billing.adapters.orm import metadata
from chassis.db import run_migrations

run_migrations(metadata)
