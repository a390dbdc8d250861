"""Who migrates the schema: every process at start-up (`souk up`), or a run of its own that
migrates and exits (a Kubernetes Job) while the replicas skip it and wait for the schema."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from chassis import ServiceSettings
from chassis.serve import migrate_only

Running = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


def _settings(tmp_path: Path, migrate: str) -> ServiceSettings:
    return ServiceSettings(
        service="demo",
        instance="demo-1",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        migrate=migrate,  # type: ignore[arg-type]
    )


def _tables(db_file: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(db_file)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


async def test_a_migration_run_brings_the_schema_to_head_and_serves_nothing(
    tmp_path: Path, make_app: Callable[..., FastAPI], migrations: Path
) -> None:
    settings = _settings(tmp_path, "only")
    app = make_app(settings=settings, migrations=migrations)

    await migrate_only(app, settings)

    assert {"things", "alembic_version"} <= _tables(tmp_path / "demo.db")


async def test_a_replica_that_skips_migrations_stays_unready_until_the_schema_is_at_head(
    tmp_path: Path, make_app: Callable[..., FastAPI], migrations: Path, running: Running
) -> None:
    replica = make_app(settings=_settings(tmp_path, "skip"), migrations=migrations)
    async with running(replica) as client:
        before = await client.get("/readyz")
        assert "things" not in _tables(tmp_path / "demo.db")

        job_settings = _settings(tmp_path, "only")
        await migrate_only(make_app(settings=job_settings, migrations=migrations), job_settings)
        after = await client.get("/readyz")

    assert before.status_code == 503
    assert after.status_code == 200


async def test_a_migration_run_of_a_service_without_a_database_does_nothing(
    tmp_path: Path, make_app: Callable[..., FastAPI]
) -> None:
    settings = _settings(tmp_path, "only")

    await migrate_only(make_app(settings=settings), settings)

    assert not (tmp_path / "demo.db").exists()


def test_processes_migrate_at_start_up_unless_told_otherwise() -> None:
    assert ServiceSettings().migrate == "at-start"
