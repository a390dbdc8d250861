"""Alembic environment: the chassis applies bff-web's migrations at start-up."""

from bff_web.adapters.orm import metadata
from chassis.db import run_migrations

run_migrations(metadata)
