"""The installation's secrets: made once per data dir, private, handed to who needs them."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

import pytest

from souk.install_secrets import (
    SECRETS_FILE,
    MissingSecretError,
    client_secret,
    secret_environment,
    with_secrets,
)
from souk.plan import build_plan
from souk.topology import default_topology_path, load_topology, parse_topology

if TYPE_CHECKING:
    from pathlib import Path


def test_the_default_topology_gets_secrets_made_for_this_installation(tmp_path: Path) -> None:
    topology = load_topology(default_topology_path())

    environment = secret_environment(topology, tmp_path)

    orders = environment["orders"]["ORDERS_CLIENT_SECRET"]
    bff_web = environment["bff-web"]["BFF_WEB_CLIENT_SECRET"]
    registered = json.loads(environment["identity"]["IDENTITY_CLIENT_SECRETS"])
    assert registered == {
        "souk-cli": client_secret(tmp_path, "souk-cli"),
        "orders": orders,
        "bff-web": bff_web,
    }
    assert len({orders, bff_web, registered["souk-cli"]}) == 3
    assert all(len(secret) >= 32 for secret in registered.values())
    assert "development" not in json.dumps(registered)
    assert set(environment) == {"orders", "bff-web", "identity"}


def test_the_secrets_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    secret_environment(load_topology(default_topology_path()), tmp_path / "data")

    mode = stat.S_IMODE((tmp_path / "data" / SECRETS_FILE).stat().st_mode)
    assert mode == 0o600


def test_a_restart_keeps_the_secrets_and_another_installation_has_others(
    tmp_path: Path,
) -> None:
    topology = load_topology(default_topology_path())

    first = secret_environment(topology, tmp_path / "one")
    again = secret_environment(topology, tmp_path / "one")
    other = secret_environment(topology, tmp_path / "two")

    assert first == again
    assert first["orders"] != other["orders"]


def test_a_secret_the_topology_sets_is_kept_and_identity_registers_that_one(
    tmp_path: Path,
) -> None:
    topology = parse_topology(
        """
services:
  identity: {}
  orders:
    env: {ORDERS_CLIENT_ID: orders, ORDERS_CLIENT_SECRET: a-secret-the-operator-chose-herself}
""",
        "souk.yaml",
    )

    environment = secret_environment(topology, tmp_path)

    assert "orders" not in environment
    registered = json.loads(environment["identity"]["IDENTITY_CLIENT_SECRETS"])
    assert registered["orders"] == "a-secret-the-operator-chose-herself"


def test_the_plans_carry_each_instances_secrets(tmp_path: Path) -> None:
    topology = load_topology(default_topology_path())

    plans = with_secrets(build_plan(topology, tmp_path), topology, tmp_path)

    orders = [plan for plan in plans if plan.service == "orders"]
    catalog = [plan for plan in plans if plan.service == "catalog"]
    assert orders[0].env["ORDERS_CLIENT_SECRET"] == client_secret(tmp_path, "orders")
    assert not any("CLIENT_SECRET" in name for plan in catalog for name in plan.env)


def test_no_secret_before_the_first_souk_up(tmp_path: Path) -> None:
    with pytest.raises(MissingSecretError, match="run `souk up` first"):
        client_secret(tmp_path, "souk-cli")
