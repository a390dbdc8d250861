"""Alembic environment: the chassis applies notifications' migrations at start-up."""

from chassis.db import run_migrations
from notifications.adapters.orm import metadata

run_migrations(metadata)
