"""Databases on a PostgreSQL server: one per service, or one shared with a schema and role each.

Every service logs in as its own role. In ``per-service`` mode each service gets its own
database, owned by its role, which no other role may connect to. In ``shared`` mode all
services live in one database, each in a private schema owned by its role, whose
``search_path`` points at that schema; no role may use another's schema, so a service can
neither read nor write another service's tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from souk.topology import DatabaseSpec

ROLE_PASSWORDS_FILE = "postgres-roles.json"


class DatabaseProvisionError(Exception):
    """The database server could not be reached or prepared."""


def database_name(spec: DatabaseSpec, service: str) -> str:
    """The database (per-service mode) or role (shared mode) name of a service."""
    return f"{spec.prefix}_{service.replace('-', '_')}"


def schema_name(service: str) -> str:
    return service.replace("-", "_")


async def provision(spec: DatabaseSpec, services: Sequence[str], data_dir: Path) -> dict[str, str]:
    """Create what is missing and return each service's SQLAlchemy database URL.

    Every service logs in as its own role; no role may reach another service's data.
    """
    if spec.backend == "sqlite" or not services:
        return {}
    roles = {service: database_name(spec, service) for service in services}
    passwords = _role_passwords(data_dir, list(roles.values()))
    admin = await _connect(spec.url)
    try:
        # Several `souk up` (the hosts of a multi-host topology) may provision one server at
        # once: concurrent GRANTs on one database fail ("tuple concurrently updated"), so they
        # take turns. The lock is the session's: closing the connection releases it.
        await admin.fetchval("SELECT pg_advisory_lock(hashtext($1))", f"souk:{spec.prefix}")
        for role in roles.values():
            await _ensure_role(admin, role, passwords[role])
        if spec.mode == "per-service":
            for role in roles.values():
                # The database is named after its role, which owns it (and its public schema).
                await _create_database(admin, role, owner=role)
                await admin.execute(f'REVOKE ALL ON DATABASE "{role}" FROM PUBLIC')
                await admin.execute(f'GRANT CONNECT ON DATABASE "{role}" TO "{role}"')
            return {
                service: _service_url(spec.url, database=role, user=role, password=passwords[role])
                for service, role in roles.items()
            }
        await _create_database(admin, spec.prefix)
        await _provision_schemas(spec, roles)
    finally:
        await admin.close()
    return {
        service: _service_url(spec.url, database=spec.prefix, user=role, password=passwords[role])
        for service, role in roles.items()
    }


async def _provision_schemas(spec: DatabaseSpec, roles: dict[str, str]) -> None:
    shared = await _connect(_with_database(spec.url, spec.prefix))
    try:
        async with shared.transaction():
            await shared.execute(f'REVOKE ALL ON DATABASE "{spec.prefix}" FROM PUBLIC')
            await shared.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for service, role in roles.items():
                schema = schema_name(service)
                await shared.execute(
                    f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{role}"'
                )
                await shared.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC')
                await shared.execute(f'GRANT CONNECT ON DATABASE "{spec.prefix}" TO "{role}"')
                await shared.execute(
                    f'ALTER ROLE "{role}" IN DATABASE "{spec.prefix}" SET search_path = "{schema}"'
                )
    finally:
        await shared.close()


async def drop(spec: DatabaseSpec, services: Sequence[str]) -> None:
    """Remove what :func:`provision` created (databases, and roles in shared mode)."""
    if spec.backend == "sqlite":
        return
    admin = await _connect(spec.url)
    try:
        roles = [database_name(spec, service) for service in services]
        databases = roles if spec.mode == "per-service" else [spec.prefix]
        for database in databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in roles:
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await admin.close()


async def _connect(url: str) -> asyncpg.Connection:
    try:
        connection: asyncpg.Connection = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        where = urlsplit(url).netloc.rpartition("@")[2] or "localhost"
        raise DatabaseProvisionError(
            f"PostgreSQL at {where} is not usable ({type(exc).__name__}: {exc}); start it, "
            "or set `database: {backend: sqlite}` in the topology"
        ) from exc
    return connection


async def _ensure_role(admin: asyncpg.Connection, role: str, password: str) -> None:
    exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # Role names are validated identifiers; the password is URL-safe base64.
    await admin.execute(f"{verb} ROLE \"{role}\" LOGIN PASSWORD '{password}'")


async def _create_database(admin: asyncpg.Connection, name: str, owner: str | None = None) -> None:
    if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
        # Another `souk up` on the same server may create it meanwhile.
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):
            await admin.execute(f'CREATE DATABASE "{name}"')
    if owner is not None:
        await admin.execute(f'ALTER DATABASE "{name}" OWNER TO "{owner}"')


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _service_url(admin_url: str, *, database: str, user: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user)}:{quote(password)}@{host}"
    return urlunsplit(
        parts._replace(scheme="postgresql+asyncpg", netloc=netloc, path=f"/{database}")
    )


def ensure_role_passwords(spec: DatabaseSpec, services: Sequence[str], data_dir: Path) -> Path:
    """Make the services' role passwords now (as the first `souk up` would); their file."""
    _role_passwords(data_dir, [database_name(spec, service) for service in services])
    return data_dir / ROLE_PASSWORDS_FILE


def _role_passwords(data_dir: Path, roles: Sequence[str]) -> dict[str, str]:
    # Kept beside the data so a restart reuses them; readable by the owner only.
    path = data_dir / ROLE_PASSWORDS_FILE
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [role for role in roles if role not in known]
    if missing:
        known.update({role: secrets.token_urlsafe(24) for role in missing})
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(known, file, indent=2)
    return known
