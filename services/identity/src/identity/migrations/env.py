"""Alembic environment: the chassis applies identity's migrations at start-up."""

from chassis.db import run_migrations
from identity.adapters.orm import metadata

run_migrations(metadata)
