"""Alembic environment: the chassis applies order-history's migrations at start-up."""

from chassis.db import run_migrations
from order_history.adapters.orm import metadata

run_migrations(metadata)
