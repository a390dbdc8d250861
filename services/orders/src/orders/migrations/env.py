"""Alembic environment: the chassis applies the orders' migrations at start-up."""

from chassis.db import run_migrations
from orders.adapters.orm import metadata

run_migrations(metadata)
