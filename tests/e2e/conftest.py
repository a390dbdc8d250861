"""One Souk system for the whole end-to-end suite, booted exactly as `souk up` boots it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import secrets
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
import yaml

from souk.databases import drop
from souk.testing import SoukSystem, client_token, customer_token, free_port, require_server
from souk.topology import DatabaseSpec

DEFAULT_PUBLIC_URL = "http://localhost:8080"


def default_topology() -> dict[str, Any]:
    """The topology `souk up` runs by default, with the gateway moved to a free port.

    The public URL (the tokens' issuer, the storefront's sign-in callback) moves with it, so a
    browser that follows identity's redirects lands on this system's gateway.
    """
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    topology: dict[str, Any] = copy.deepcopy(yaml.safe_load(text))
    topology.pop("data_dir", None)
    port = free_port()
    topology["services"]["gateway"]["port"] = port
    topology["services"]["console"]["port"] = free_port()
    for service in topology["services"].values():
        env = service.get("env", {})
        for name, value in env.items():
            if value == DEFAULT_PUBLIC_URL:
                env[name] = f"http://127.0.0.1:{port}"
    # The whole suite is one client at 127.0.0.1 signing up hundreds of customers: it raises
    # the edge's rate limits explicitly (test_security.py proves the defaults on a gateway).
    topology["services"]["gateway"]["env"]["GATEWAY_RATE_LIMITS"] = SUITE_RATE_LIMITS
    # A few orders fill several pages of My orders, so the browser journey can page them.
    topology["services"]["bff-web"].setdefault("env", {})["BFF_WEB_ORDERS_PER_PAGE"] = str(
        ORDERS_PER_PAGE
    )
    return topology


ORDERS_PER_PAGE = 3


SUITE_RATE_LIMITS = {
    "per_ip": {"rate": 10_000, "burst": 10_000},
    "per_client": {"rate": 10_000, "burst": 10_000},
    "per_ip_expensive": {"rate": 10_000, "burst": 10_000},
}


POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "sesame-opens-the-souk"  # noqa: S105 - every e2e customer's, on a throwaway system
CLI_CLIENT_ID = "souk-cli"
# The shop's own service clients: identity issues their tokens only to direct callers.
ORDERS_CLIENT_ID = "orders"


def cli_client(system: SoukSystem) -> tuple[str, str]:
    """The command line's client id and the secret this installation made for it."""
    return system.client_credentials(CLI_CLIENT_ID)


def service_token(system: SoukSystem, client_id: str, scopes: list[str]) -> str:
    """A service client's token, asked of identity directly as that service does (the public
    edge refuses to issue it)."""
    return client_token(system.url("identity"), *system.client_credentials(client_id), scopes)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def new_shopper(system: SoukSystem) -> Iterator[httpx.Client]:
    """The gateway as a customer new to the shop sees it: signed up, every request with their
    access token (orders:read and orders:write)."""
    email = f"shopper-{uuid.uuid4().hex[:12]}@example.com"
    token = customer_token(system.gateway_url, email, PASSWORD)
    with httpx.Client(base_url=system.gateway_url, timeout=10.0, headers=bearer(token)) as client:
        yield client


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def souk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SoukSystem]:
    """The default system, once on SQLite files and once with a PostgreSQL database per service.

    Stopping it must leave no process behind.
    """
    topology = default_topology()
    database: DatabaseSpec | None = None
    if request.param == "postgres":
        require_server("PostgreSQL", "127.0.0.1", 5432)
        database = DatabaseSpec(
            backend="postgres",
            url=POSTGRES_ADMIN_URL,
            mode="per-service",
            prefix=f"souk_e2e_{secrets.token_hex(4)}",
        )
        topology["database"] = database.model_dump()
    directory = tmp_path_factory.mktemp(f"souk-{request.param}")
    try:
        with SoukSystem(topology, directory, ready_timeout=60) as system:
            yield system
    finally:
        if database is not None:
            stateful = [n for n, s in topology["services"].items() if s.get("database", True)]
            asyncio.run(drop(database, stateful))


@pytest.fixture
def gateway(souk: SoukSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=souk.gateway_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def shopper(souk: SoukSystem) -> Iterator[httpx.Client]:
    """A customer of this test's own, so no other test's orders or notifications are theirs."""
    with new_shopper(souk) as client:
        yield client


@pytest.fixture
def admin(souk: SoukSystem) -> Iterator[httpx.Client]:
    """The gateway as the souk-cli script sees it: a client token with catalog:write."""
    token = client_token(souk.gateway_url, *cli_client(souk), ["catalog:write"])
    with httpx.Client(base_url=souk.gateway_url, timeout=10.0, headers=bearer(token)) as client:
        yield client
