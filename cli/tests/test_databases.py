"""PostgreSQL provisioning on the real server: a database per service, or a shared one."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from souk.databases import DatabaseProvisionError, drop, provision
from souk.testing import require_server
from souk.topology import DatabaseSpec

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICES = ["catalog", "order-history"]


def _plain(url: str) -> str:
    """asyncpg takes the URL without SQLAlchemy's driver suffix."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
async def spec_for() -> AsyncIterator[type[DatabaseSpec]]:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    made: list[DatabaseSpec] = []

    def make(mode: str) -> DatabaseSpec:
        spec = DatabaseSpec(
            backend="postgres", url=ADMIN_URL, mode=mode, prefix=f"souk_t{secrets.token_hex(4)}"
        )
        made.append(spec)
        return spec

    yield make  # type: ignore[misc]
    for spec in made:
        await drop(spec, SERVICES)


async def test_per_service_mode_gives_each_service_its_own_database(spec_for, tmp_path: Path):
    spec = spec_for("per-service")
    urls = await provision(spec, SERVICES, tmp_path)

    assert set(urls) == set(SERVICES)
    seen = set()
    for url in urls.values():
        assert url.startswith("postgresql+asyncpg://")
        connection = await asyncpg.connect(_plain(url))
        seen.add(await connection.fetchrow("SELECT current_database(), current_user"))
        await connection.close()
    # Each service logs in as its own role, not as the administrator.
    assert {tuple(row) for row in seen} == {
        (f"{spec.prefix}_catalog", f"{spec.prefix}_catalog"),
        (f"{spec.prefix}_order_history", f"{spec.prefix}_order_history"),
    }


async def test_in_per_service_mode_a_service_cannot_connect_to_another_services_database(
    spec_for, tmp_path: Path
):
    spec = spec_for("per-service")
    urls = await provision(spec, SERVICES, tmp_path)
    base, _, _ = urls["order-history"].rpartition("/")
    history_role_on_catalog = f"{base}/{spec.prefix}_catalog"
    with pytest.raises(asyncpg.PostgresError, match="permission denied"):
        await asyncpg.connect(_plain(history_role_on_catalog))


async def test_provisioning_again_changes_nothing(spec_for, tmp_path: Path):
    spec = spec_for("shared")
    first = await provision(spec, SERVICES, tmp_path)
    second = await provision(spec, SERVICES, tmp_path)
    assert first == second
    assert (tmp_path / "postgres-roles.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", ["per-service", "shared"])
async def test_several_hosts_provisioning_one_server_at_once_all_succeed(
    spec_for, tmp_path: Path, mode: str
):
    # The hosts of a multi-host topology share the role passwords (copied data dirs) and
    # provision on start, possibly at the same moment: they take turns on the server.
    spec = spec_for(mode)
    first = await provision(spec, SERVICES, tmp_path)  # makes postgres-roles.json
    for host in ("a", "b", "c"):
        (tmp_path / host).mkdir()
        (tmp_path / host / "postgres-roles.json").write_bytes(
            (tmp_path / "postgres-roles.json").read_bytes()
        )
    await drop(spec, SERVICES)
    found = await asyncio.gather(
        *(provision(spec, SERVICES, tmp_path / host) for host in ("a", "b", "c"))
    )
    assert found == [first, first, first]
    for url in first.values():
        connection = await asyncpg.connect(_plain(url))
        assert await connection.fetchval("SELECT 1") == 1
        await connection.close()


async def test_in_shared_mode_a_service_cannot_touch_another_services_tables(
    spec_for, tmp_path: Path
):
    spec = spec_for("shared")
    urls = await provision(spec, SERVICES, tmp_path)
    catalog = await asyncpg.connect(_plain(urls["catalog"]))
    history = await asyncpg.connect(_plain(urls["order-history"]))
    try:
        # Each role lands in its own schema without naming it.
        await catalog.execute("CREATE TABLE products (sku text PRIMARY KEY)")
        await catalog.execute("INSERT INTO products VALUES ('SPC-SAFFRON-2G')")
        assert await catalog.fetchval("SELECT current_schema()") == "catalog"
        assert await history.fetchval("SELECT current_schema()") == "order_history"

        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await history.fetch("SELECT * FROM catalog.products")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await history.execute("INSERT INTO catalog.products VALUES ('FORGED')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await history.execute("CREATE TABLE catalog.sneaky (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await history.execute("CREATE TABLE public.shared_by_accident (x int)")
        with pytest.raises(asyncpg.UndefinedTableError):
            await history.fetch("SELECT * FROM products")

        assert await catalog.fetchval("SELECT count(*) FROM products") == 1
    finally:
        await catalog.close()
        await history.close()


async def test_an_unreachable_server_is_refused_with_a_clear_message(tmp_path: Path):
    spec = DatabaseSpec(backend="postgres", url="postgresql://postgres@127.0.0.1:9/postgres")
    with pytest.raises(DatabaseProvisionError, match=r"PostgreSQL at 127\.0\.0\.1:9 is not usable"):
        await provision(spec, SERVICES, tmp_path)


async def test_sqlite_needs_no_provisioning(tmp_path: Path):
    assert await provision(DatabaseSpec(), SERVICES, tmp_path) == {}
