"""The instance plan: ports, the process contract environment, and the stop order."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from souk.plan import (
    BrokerUnreachableError,
    PortInUseError,
    build_plan,
    check_broker,
    check_fixed_ports,
    env_prefix,
    free_port,
    port_is_free,
    stop_order,
)
from souk.topology import parse_topology

TOPOLOGY = """
services:
  api-gateway:
    module: gateway
    port: {port}
    upstreams: [catalog]
    env: {{LOG_LEVEL: debug, WORKERS: 2, API_GATEWAY_HOST: 0.0.0.0}}
  catalog:
    replicas: 2
"""


def test_contract_environment(tmp_path: Path) -> None:
    port = free_port()
    topology = parse_topology(TOPOLOGY.format(port=port), "souk.yaml")
    plans = build_plan(topology, tmp_path / "data")
    assert [plan.instance for plan in plans] == ["api-gateway-1", "catalog-1", "catalog-2"]
    gateway, catalog1, catalog2 = plans
    assert gateway.port == port
    assert len({plan.port for plan in plans}) == 3
    assert gateway.command() == [sys.executable, "-m", "gateway"]
    assert catalog1.command() == [sys.executable, "-m", "catalog"]

    env = gateway.environment({"PATH": "/bin", "API_GATEWAY_PORT": "stale"})
    assert env["PATH"] == "/bin"
    assert env["API_GATEWAY_INSTANCE"] == "api-gateway-1"
    assert env["API_GATEWAY_PORT"] == str(port)
    assert env["API_GATEWAY_DATA_DIR"] == str((tmp_path / "data").resolve())
    assert json.loads(env["API_GATEWAY_UPSTREAMS"]) == {
        "catalog": [f"http://127.0.0.1:{catalog1.port}", f"http://127.0.0.1:{catalog2.port}"]
    }
    assert env["PYTHONUNBUFFERED"] == "1"
    assert (env["LOG_LEVEL"], env["WORKERS"]) == ("debug", "2")
    assert env["API_GATEWAY_HOST"] == "0.0.0.0"  # the topology's env wins over the contract

    catalog_env = catalog2.environment({})
    assert catalog_env["CATALOG_INSTANCE"] == "catalog-2"
    assert catalog_env["CATALOG_HOST"] == "127.0.0.1"
    assert catalog_env["CATALOG_UPSTREAMS"] == "{}"
    assert catalog2.log_path == (tmp_path / "data" / "logs" / "catalog-2.log").resolve()


def test_env_prefix() -> None:
    assert env_prefix("order-history") == "ORDER_HISTORY_"


def test_taken_fixed_port_is_reported_with_its_service() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert not port_is_free(port)
        topology = parse_topology(TOPOLOGY.format(port=port), "souk.yaml")
        with pytest.raises(PortInUseError, match=rf"port {port} \(api-gateway\) is already in use"):
            check_fixed_ports(topology)
    assert port_is_free(port)


def test_stop_order_puts_callers_first() -> None:
    topology = parse_topology(
        "services:\n"
        "  catalog: {}\n"
        "  gateway: {upstreams: [orders, catalog]}\n"
        "  orders: {upstreams: [catalog]}\n"
        "  ping: {}\n",
        "souk.yaml",
    )
    assert stop_order(topology) == [["gateway", "ping"], ["orders"], ["catalog"]]


def test_stop_order_survives_a_cycle() -> None:
    topology = parse_topology(
        "services:\n  a: {upstreams: [b]}\n  b: {upstreams: [a]}\n  c: {upstreams: [a]}\n",
        "souk.yaml",
    )
    assert stop_order(topology) == [["c"], ["a", "b"]]


GRPC_TOPOLOGY = """
services:
  orders:
    upstreams: [inventory]
  inventory:
    replicas: 2
    grpc: true
"""


def test_a_grpc_service_gets_a_second_port_and_its_callers_get_grpc_targets(
    tmp_path: Path,
) -> None:
    topology = parse_topology(GRPC_TOPOLOGY, "souk.yaml")
    orders, inventory1, inventory2 = build_plan(topology, tmp_path)
    assert orders.grpc_port is None
    assert "ORDERS_GRPC_PORT" not in orders.env
    for plan in (inventory1, inventory2):
        assert plan.grpc_port is not None
        assert plan.grpc_port != plan.port
        assert plan.env["INVENTORY_GRPC_PORT"] == str(plan.grpc_port)
    assert json.loads(orders.env["ORDERS_UPSTREAMS"]) == {
        "inventory": [
            f"grpc://127.0.0.1:{inventory1.grpc_port}",
            f"grpc://127.0.0.1:{inventory2.grpc_port}",
        ]
    }
    all_ports = [p.port for p in (orders, inventory1, inventory2)]
    all_ports += [inventory1.grpc_port, inventory2.grpc_port]
    assert len(set(all_ports)) == 5


def test_every_instance_is_told_which_service_it_is(tmp_path: Path) -> None:
    topology = parse_topology(GRPC_TOPOLOGY, "souk.yaml")
    assert [plan.env["SOUK_SERVICE"] for plan in build_plan(topology, tmp_path)] == [
        "orders",
        "inventory",
        "inventory",
    ]


@pytest.mark.parametrize(
    ("broker", "url", "partitions", "namespace"),
    [
        ("", "embedded://{data}/broker", "8", "souk"),
        ("broker: embedded", "embedded://{data}/broker", "8", "souk"),
        ("broker: rabbitmq", "amqp://guest:guest@127.0.0.1:5672/", "8", "souk"),
        (
            "broker: {kind: nats, partitions: 4, namespace: shop-test}",
            "nats://127.0.0.1:4222",
            "4",
            "shop-test",
        ),
        ("broker: kafka", "kafka://127.0.0.1:9092", "8", "souk"),
        (
            "broker: {url: 'amqp://u:p@mq:5673/shop?heartbeat=10', partitions: 2}",
            "amqp://u:p@mq:5673/shop?heartbeat=10",
            "2",
            "souk",
        ),
        ("broker: embedded:///srv/bus", "embedded:///srv/bus", "8", "souk"),
    ],
)
def test_every_instance_gets_the_broker_settings(
    tmp_path: Path, broker: str, url: str, partitions: str, namespace: str
) -> None:
    # Each setting in a variable of its own, not packed into the URL to be parsed back.
    topology = parse_topology(f"{broker}\n{GRPC_TOPOLOGY}", "souk.yaml")
    plans = build_plan(topology, tmp_path / "data")
    expected = (url.format(data=(tmp_path / "data").resolve()), partitions, namespace)
    names = ("BROKER_URL", "BROKER_PARTITIONS", "BROKER_NAMESPACE")
    given = [tuple(plan.env[f"{env_prefix(plan.service)}{n}"] for n in names) for plan in plans]
    assert given == [expected] * 3


def _broker_topology(url: str) -> str:
    return f"services:\n  catalog: {{}}\nbroker:\n  kind: nats\n  url: {url}\n"


def test_a_broker_nobody_listens_on_is_refused_naming_server_and_line() -> None:
    port = free_port()  # nobody listens there
    topology = parse_topology(_broker_topology(f"nats://127.0.0.1:{port}"), "souk.yaml")
    with pytest.raises(BrokerUnreachableError) as caught:
        check_broker(topology)
    assert str(caught.value) == (
        f"the nats broker at 127.0.0.1:{port} does not accept connections "
        "(Connection refused); start it, or change `broker:` at souk.yaml:5"
    )


def test_a_listening_broker_passes() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        check_broker(parse_topology(_broker_topology(f"nats://127.0.0.1:{port}"), "souk.yaml"))


def test_the_embedded_broker_needs_no_server() -> None:
    check_broker(parse_topology("services:\n  catalog: {}\n", "souk.yaml"))
