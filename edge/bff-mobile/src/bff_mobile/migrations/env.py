"""Alembic environment: the chassis applies bff-mobile's migrations at start-up."""

from bff_mobile.adapters.orm import metadata
from chassis.db import run_migrations

run_migrations(metadata)
