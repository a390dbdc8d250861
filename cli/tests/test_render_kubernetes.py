"""`souk render kubernetes`: the manifests follow souk.yaml (replicas, broker, database, mesh
policy), so the one file keeps describing the system on a cluster too."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from souk.kubernetes import write

RunSouk = Callable[..., Any]
Manifest = dict[str, Any]

SMALL_SHOP = """
broker: rabbitmq
database: {backend: postgres, mode: per-service}
services:
  gateway:
    port: 8080
    upstreams: [catalog, orders, identity]
    database: false
  catalog:
    replicas: 3
    upstreams: [identity]
  orders:
    upstreams: [catalog, inventory, identity]
  inventory:
    grpc: true
    upstreams: [identity]
  identity: {}
"""

# Another shape of the same shop: NATS, one shared database, other replica counts, and a
# mesh policy of its own in which only the gateway may call catalog.
BUSY_SHOP = """
broker: {kind: nats, partitions: 16, namespace: shop}
database: {backend: postgres, mode: shared, prefix: shop}
mesh:
  enabled: false
  policy:
    catalog:
      allow: [{from: [gateway]}]
    orders:
      allow: [{from: [gateway]}]
    inventory:
      allow: [{from: [orders]}]
    identity:
      allow: [{from: [gateway, catalog, orders, inventory]}]
services:
  gateway:
    port: 8080
    upstreams: [catalog, orders, identity]
    database: false
  catalog:
    upstreams: [identity]
  orders:
    replicas: 2
    upstreams: [inventory, identity]
  inventory:
    replicas: 4
    grpc: true
    upstreams: [identity]
  identity: {}
  console:
    port: 8081
    database: false
"""


Rendered = dict[str, dict[str, list[Manifest]]]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """Both shops rendered once by `souk render kubernetes` (kind → resources of the base)."""
    directory = tmp_path_factory.mktemp("render")
    return {
        name: render(directory, name, text)
        for name, text in (("small", SMALL_SHOP), ("busy", BUSY_SHOP))
    }


def render(directory: Path, name: str, text: str) -> dict[str, list[Manifest]]:
    topology = directory / f"{name}.yaml"
    topology.write_text(text)
    output = directory / name
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "souk",
            "render",
            "kubernetes",
            "-t",
            str(topology),
            "-o",
            str(output),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (output / "nats-values.yaml").is_file() == ("nats" in text)
    found: dict[str, list[Manifest]] = {}
    for path in sorted((output / "base").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "kind" in doc:
                found.setdefault(doc["kind"], []).append(doc)
    return found


def named(resources: dict[str, list[Manifest]], kind: str) -> dict[str, Manifest]:
    return {r["metadata"]["name"]: r for r in resources.get(kind, [])}


def env_of(deployment: Manifest) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_replicas_broker_and_databases_follow_the_topology(rendered: Rendered) -> None:
    small, busy = rendered["small"], rendered["busy"]

    replicas = {n: d["spec"]["replicas"] for n, d in named(small, "Deployment").items()}
    assert replicas == {"gateway": 1, "catalog": 3, "orders": 1, "inventory": 1, "identity": 1}
    replicas = {n: d["spec"]["replicas"] for n, d in named(busy, "Deployment").items()}
    assert replicas == {"gateway": 1, "catalog": 1, "orders": 2, "inventory": 4, "identity": 1}
    assert named(busy, "HorizontalPodAutoscaler")["inventory"]["spec"]["minReplicas"] == 4

    # The broker: a RabbitMQ cluster by its operator, or the NATS chart (values beside).
    assert list(named(small, "RabbitmqCluster")) == ["souk-broker"]
    assert env_of(named(small, "Deployment")["orders"])["ORDERS_BROKER_URL"].startswith("amqp://")
    assert "RabbitmqCluster" not in busy
    assert (
        env_of(named(busy, "Deployment")["orders"])["ORDERS_BROKER_URL"] == "nats://souk-nats:4222"
    )
    busy_settings = named(busy, "ConfigMap")["orders-settings"]["data"]
    assert busy_settings["ORDERS_BROKER_PARTITIONS"] == "16"
    assert busy_settings["ORDERS_BROKER_NAMESPACE"] == "shop"

    # Databases: one each, owned by the service's role; or one shared with a schema each.
    small_databases = {d["spec"]["name"]: d["spec"]["owner"] for d in small["Database"]}
    assert small_databases == {
        "souk_catalog": "souk_catalog",
        "souk_orders": "souk_orders",
        "souk_inventory": "souk_inventory",
        "souk_identity": "souk_identity",
    }
    (shared,) = busy["Database"]
    assert shared["spec"]["name"] == "shop"
    assert {s["name"] for s in shared["spec"]["schemas"]} == {
        "shop_catalog",
        "shop_orders",
        "shop_inventory",
        "shop_identity",
    }
    assert env_of(named(busy, "Deployment")["orders"])["ORDERS_DATABASE_URL"].endswith(
        "@souk-postgres-rw:5432/shop"
    )
    assert "DATABASE_URL" not in str(env_of(named(small, "Deployment")["gateway"]))
    assert set(named(small, "Job")) == {
        "catalog-migrate",
        "orders-migrate",
        "inventory-migrate",
        "identity-migrate",
    }

    # The console is the cluster's collector and Prometheus: no Deployment of its own.
    assert "console" not in named(busy, "Deployment")
    assert "gateway" in named(busy, "Deployment")


def test_the_mesh_policy_of_the_topology_drives_istio_and_the_network_policies(
    rendered: Rendered,
) -> None:
    small, busy = rendered["small"], rendered["busy"]

    def catalog_callers(resources: dict[str, list[Manifest]]) -> set[str]:
        rules = named(resources, "AuthorizationPolicy")["catalog"]["spec"]["rules"]
        return {
            principal.rpartition("/")[2]
            for rule in rules[1:]
            for source in rule["from"]
            for principal in source["source"]["principals"]
        }

    def admitted(resources: dict[str, list[Manifest]], service: str) -> set[str]:
        policy = named(resources, "NetworkPolicy")[service]
        return {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" not in peer
            and "app.kubernetes.io/name" in peer.get("podSelector", {}).get("matchLabels", {})
        }

    # The shipped policy: catalog takes the gateway, the BFFs, orders, order-history, the CLI.
    assert catalog_callers(small) == {
        "gateway",
        "bff-web",
        "bff-mobile",
        "orders",
        "order-history",
        "souk-cli",
    }
    assert admitted(small, "catalog") == {"gateway", "orders", "souk-cli"}
    # The topology's own policy: only the gateway.
    assert catalog_callers(busy) == {"gateway"}
    assert admitted(busy, "catalog") == {"gateway"}


def test_an_overlay_is_printed_built(run_souk: RunSouk, tmp_path: Path) -> None:
    topology = tmp_path / "souk.yaml"
    topology.write_text(SMALL_SHOP)
    result = run_souk("render", "kubernetes", "--output", "k8s", "--overlay", "prod")
    assert result.returncode == 0, result.stderr
    resources = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    cluster = next(r for r in resources if r["kind"] == "Cluster")
    assert cluster["spec"]["instances"] == 3
    assert all(r["metadata"]["labels"]["souk.dev/overlay"] == "prod" for r in resources)
    assert (tmp_path / "k8s" / "overlays" / "dev" / "kustomization.yaml").is_file()


def test_an_unknown_overlay_is_refused(run_souk: RunSouk, tmp_path: Path) -> None:
    result = run_souk("render", "kubernetes", "--overlay", "staging")
    assert result.returncode == 1
    assert "unknown overlay 'staging'" in result.stderr


def test_a_rendering_replaces_the_previous_one(tmp_path: Path) -> None:
    write({"base/services/billing.yaml": "a: 1\n", "create-secrets.sh": "true\n"}, tmp_path)
    (tmp_path / "souk.yaml").write_text("kept: yes\n")

    write({"base/services/catalog.yaml": "b: 2\n"}, tmp_path)

    assert not (tmp_path / "base" / "services" / "billing.yaml").exists()
    assert not (tmp_path / "create-secrets.sh").exists()
    assert (tmp_path / "base" / "services" / "catalog.yaml").read_text() == "b: 2\n"
    assert (tmp_path / "souk.yaml").is_file()


def _overlay_patch(output: Path, overlay: str) -> dict[str, str]:
    kustomization = yaml.safe_load(
        (output / "overlays" / overlay / "kustomization.yaml").read_text()
    )
    [patch] = [p for p in kustomization["patches"] if p["target"].get("name") == "gateway-settings"]
    return {op["path"].rpartition("/")[2]: op["value"] for op in yaml.safe_load(patch["patch"])}


def test_the_clusters_proxies_and_ops_networks_are_given_at_rendering_into_every_overlay(
    tmp_path: Path,
) -> None:
    topology = tmp_path / "shop.yaml"
    topology.write_text(SMALL_SHOP)
    command = [sys.executable, "-m", "souk", "render", "kubernetes", "-t", str(topology)]
    given = subprocess.run(
        [
            *command,
            "-o",
            str(tmp_path / "given"),
            "--forwarded-allow-ips",
            "127.0.0.6",
            "--forwarded-allow-ips",
            "10.8.0.0/16",
            "--ops-networks",
            "127.0.0.0/8",
            "--ops-networks",
            "10.0.0.0/24",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wrong = subprocess.run(
        [*command, "-o", str(tmp_path / "wrong"), "--ops-networks", "the-nodes"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert given.returncode == 0, given.stderr
    for overlay in ("dev", "prod"):
        assert _overlay_patch(tmp_path / "given", overlay) == {
            "GATEWAY_FORWARDED_ALLOW_IPS": '["127.0.0.6", "10.8.0.0/16"]',
            "GATEWAY_OPS_NETWORKS": '["127.0.0.0/8", "10.0.0.0/24"]',
        }
    assert wrong.returncode == 1
    assert "'the-nodes' is not an IP address or network" in wrong.stderr
    assert not (tmp_path / "wrong").exists()
