"""The topology file: defaults, and errors that name the file, the line and the key."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from chassis.settings import BrokerSettings
from souk.topology import (
    TopologyError,
    default_topology_path,
    env_value,
    load_topology,
    parse_topology,
    resolve_topology,
)


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        parse_topology(dedent(text).lstrip("\n"), "souk.yaml")
    return caught.value.problems


def test_replicas_below_one_names_line_and_key() -> None:
    found = problems(
        """
        services:
          gateway:
            port: 8080
            upstreams: [catalog]
          catalog:
            module: catalog
            replicas: 0
        """
    )
    assert found == [
        "souk.yaml:7: services.catalog.replicas: Input should be greater than or equal to 1"
    ]


def test_unknown_upstream_points_at_the_list_item() -> None:
    found = problems(
        """
        services:
          gateway:
            upstreams:
              - catalog
              - catalgo
          catalog: {}
        """
    )
    assert len(found) == 1
    assert found[0].startswith("souk.yaml:5: services.gateway.upstreams[1]: unknown service")
    assert "'catalgo'" in found[0]


def test_unknown_key_is_refused_at_its_line() -> None:
    found = problems(
        """
        services:
          catalog:
            replicas: 2
            replica: 3
        """
    )
    assert found == ["souk.yaml:4: services.catalog.replica: Extra inputs are not permitted"]


def test_fixed_port_with_two_replicas_is_refused() -> None:
    found = problems(
        """
        services:
          catalog:
            replicas: 2
            port: 9000
        """
    )
    assert len(found) == 1
    assert found[0].startswith("souk.yaml:4: services.catalog.port: port is only valid with")


def test_ports_must_match_replicas() -> None:
    found = problems(
        """
        services:
          catalog:
            replicas: 3
            ports: [9001, 9002]
        """
    )
    assert found == ["souk.yaml:4: services.catalog.ports: ports lists 2 port(s) but replicas is 3"]


def test_port_out_of_range_points_at_the_item() -> None:
    found = problems(
        """
        services:
          catalog:
            replicas: 2
            ports:
              - 9001
              - 70000
        """
    )
    assert found == [
        "souk.yaml:6: services.catalog.ports[1]: Input should be less than or equal to 65535"
    ]


def test_the_same_fixed_port_twice_is_refused() -> None:
    found = problems(
        """
        services:
          gateway:
            port: 8080
          catalog:
            replicas: 2
            ports: [9000, 8080]
        """
    )
    assert found == ["souk.yaml:6: services.catalog.ports[1]: port 8080 is also used by gateway"]


def test_yaml_syntax_error_reports_its_line() -> None:
    found = problems(
        """
        services:
          catalog:
            replicas: [1, 2
          gateway: {}
        """
    )
    assert len(found) == 1
    assert found[0].startswith("souk.yaml:4: invalid YAML:")


def test_duplicate_service_is_refused() -> None:
    found = problems(
        """
        services:
          catalog: {}
          catalog:
            replicas: 2
        """
    )
    assert found == ["souk.yaml:3: services.catalog: duplicate key"]


def test_several_problems_are_all_reported_in_line_order() -> None:
    found = problems(
        """
        services:
          gateway:
            colour: blue
          catalog:
            replicas: -1
        """
    )
    assert [line.split(":")[1] for line in found] == ["3", "5"]


def test_missing_services_and_empty_file() -> None:
    assert problems("data_dir: x\n") == ["souk.yaml:1: services: Field required"]
    assert problems("") == ["souk.yaml:1: services: Field required"]


def test_bad_service_name_is_refused() -> None:
    found = problems("services:\n  Order_History: {}\n")
    assert found[0].startswith("souk.yaml:2: services.Order_History: service names are")


def test_defaults_and_module_name() -> None:
    topology = parse_topology(
        "services:\n  order-history: {}\n  gateway:\n    module: edge.gw\n", "souk.yaml"
    )
    assert topology.module_of("order-history") == "order_history"
    assert topology.module_of("gateway") == "edge.gw"
    spec = topology.services["order-history"]
    assert (spec.replicas, spec.fixed_ports(), spec.upstreams, spec.env) == (1, None, [], {})


def test_env_values_are_strings_or_json() -> None:
    assert env_value("plain text") == "plain text"
    assert env_value(5) == "5"
    assert env_value(True) == "true"
    assert env_value({"a": [1, None]}) == '{"a": [1, null]}'


def test_load_names_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_text("services:\n  catalog:\n    replicas: 0\n", encoding="utf-8")
    with pytest.raises(TopologyError, match=r"topo\.yaml:3: services\.catalog\.replicas"):
        load_topology(path)


def test_default_topology_ships_the_whole_shop(tmp_path: Path) -> None:
    path, is_default = resolve_topology(None, tmp_path)
    assert is_default
    assert path == default_topology_path()
    topology = load_topology(path)
    assert topology.services["gateway"].fixed_ports() == [8080]
    assert topology.services["gateway"].upstreams == [
        "catalog",
        "orders",
        "notifications",
        "identity",
        "order-history",
        "bff-web",
        "bff-mobile",
    ]
    routes = topology.services["gateway"].env["GATEWAY_ROUTES"]
    assert {
        "prefix": "/api/notifications",
        "upstream": "notifications",
        "rewrite": "/notifications",
        "auth": "required",
        "subject": "customer",
    } in routes
    assert {
        "prefix": "/api/orders",
        "upstream": "orders",
        "rewrite": "/orders",
        "auth": "required",
        "subject": "customer",
    } in routes
    assert {"prefix": "/api/catalog", "upstream": "catalog"} in routes
    notifications = topology.services["notifications"]
    assert topology.module_of("notifications") == "notifications"
    assert notifications.database
    assert (notifications.upstreams, notifications.grpc) == (["identity"], False)
    assert topology.broker.kind == "embedded"
    # Discovery and the signing keys need no token: the gateway does not pass one on.
    assert {
        "prefix": "/.well-known",
        "upstream": "identity",
        "strip_prefix": False,
        "forward_authorization": False,
    } in routes
    assert topology.module_of("identity") == "identity"
    assert topology.services["identity"].database
    assert topology.services["catalog"].replicas == 2
    assert topology.services["inventory"].grpc
    assert topology.services["orders"].upstreams == ["catalog", "inventory", "billing", "identity"]
    assert topology.services["billing"].upstreams == [
        "payment-primary",
        "payment-backup",
        "identity",
    ]
    for simulator in ("payment-primary", "payment-backup"):
        assert topology.module_of(simulator) == "payment_provider"
        assert not topology.services[simulator].database


def test_the_gateway_and_every_checking_service_trust_the_issuer_identity_names() -> None:
    topology = load_topology(default_topology_path())
    issuer = topology.services["identity"].env["IDENTITY_ISSUER"]

    assert issuer == "http://localhost:8080"
    assert topology.services["gateway"].env["GATEWAY_AUTH_ISSUER"] == issuer
    for checking in ("catalog", "orders", "notifications", "billing", "inventory"):
        service = topology.services[checking]
        assert service.env[f"{checking.upper()}_AUTH_ISSUER"] == issuer
        assert "identity" in service.upstreams


def test_orders_calls_billing_and_inventory_as_its_own_client_of_identity() -> None:
    orders = load_topology(default_topology_path()).services["orders"]

    assert orders.env["ORDERS_CLIENT_ID"] == "orders"
    # Its secret is the installation's own, added by `souk up` (souk.install_secrets).
    assert "ORDERS_CLIENT_SECRET" not in orders.env


def test_local_souk_yaml_wins_over_the_default(tmp_path: Path) -> None:
    (tmp_path / "souk.yaml").write_text("services:\n  catalog: {}\n", encoding="utf-8")
    assert resolve_topology(None, tmp_path) == (tmp_path / "souk.yaml", False)
    other = tmp_path / "other.yaml"
    assert resolve_topology(other, tmp_path) == (other, False)


def test_a_service_name_too_long_for_a_database_role_is_refused() -> None:
    name = "a-service-name-that-goes-on-and-on"
    with pytest.raises(TopologyError) as caught:
        parse_topology(f"services:\n  {name}: {{}}\n", "souk.yaml")
    assert f"souk.yaml:2: services.{name}" in str(caught.value)
    assert "at most 30 characters" in str(caught.value)


def test_broker_defaults_to_the_embedded_one() -> None:
    topology = parse_topology("services:\n  catalog: {}\n", "souk.yaml")
    broker = topology.broker
    assert (broker.kind, broker.url, broker.partitions, broker.namespace) == (
        "embedded",
        None,
        8,
        "souk",
    )
    assert broker.server() is None
    assert broker.settings(Path("/srv/data")) == BrokerSettings("embedded:///srv/data/broker")


def test_broker_as_a_plain_kind_uses_its_usual_local_server() -> None:
    expected = {
        "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672/", ("127.0.0.1", 5672)),
        "nats": ("nats://127.0.0.1:4222", ("127.0.0.1", 4222)),
        "kafka": ("kafka://127.0.0.1:9092", ("127.0.0.1", 9092)),
    }
    for kind, (url, server) in expected.items():
        topology = parse_topology(f"services:\n  catalog: {{}}\nbroker: {kind}\n", "souk.yaml")
        assert topology.broker.kind == kind
        assert topology.broker.settings(Path("/srv")).url == url
        assert topology.broker.server() == server
        assert topology.broker_origin == "souk.yaml:3"


def test_broker_as_a_mapping() -> None:
    topology = parse_topology(
        dedent(
            """
            broker:
              kind: rabbitmq
              url: amqp://shop:secret@mq.internal/shop
              partitions: 16
              namespace: staging
            services:
              catalog: {}
            """
        ).lstrip("\n"),
        "souk.yaml",
    )
    broker = topology.broker
    assert (broker.kind, broker.partitions, broker.namespace) == ("rabbitmq", 16, "staging")
    assert broker.server() == ("mq.internal", 5672)
    assert topology.broker_origin == "souk.yaml:3"  # the url's line


def test_broker_kind_follows_the_url_when_not_given() -> None:
    topology = parse_topology(
        "services:\n  catalog: {}\nbroker: {url: 'nats://n1', namespace: t-1}\n", "souk.yaml"
    )
    assert topology.broker.kind == "nats"
    assert topology.broker.server() == ("n1", 4222)
    assert parse_topology("services: {a: {}}\nbroker: kafka://k:1\n", "x").broker.kind == "kafka"


def test_unknown_broker_kind_lists_the_four() -> None:
    assert problems(
        """
        services:
          catalog: {}
        broker:
          kind: rabbit
          partitions: 0
        """
    ) == [
        "souk.yaml:4: broker.kind: unknown broker kind 'rabbit' "
        "(one of embedded, rabbitmq, nats, kafka)",
        "souk.yaml:5: broker.partitions: Input should be greater than or equal to 1",
    ]
    assert problems("services: {catalog: {}}\nbroker: kafak\n") == [
        "souk.yaml:2: broker.kind: unknown broker kind 'kafak' "
        "(one of embedded, rabbitmq, nats, kafka)"
    ]


def test_a_url_of_another_kind_is_refused_at_its_line() -> None:
    assert problems(
        """
        broker:
          kind: kafka
          url: nats://127.0.0.1:4222
        services:
          catalog: {}
        """
    ) == ["souk.yaml:3: broker.url: a kafka broker's url starts with kafka://, not nats://"]
    assert problems("broker: {kind: rabbitmq, url: '127.0.0.1:5672'}\nservices: {a: {}}\n") == [
        "souk.yaml:1: broker.url: a rabbitmq broker's url starts with amqp:// or amqps://, "
        "not '127.0.0.1:5672'"
    ]


def test_bad_broker_urls_and_namespaces() -> None:
    assert problems(
        """
        services:
          catalog: {}
        broker:
          url: embedded://relative/dir
        """
    ) == ["souk.yaml:4: broker.url: an embedded broker's url is embedded:///absolute/directory"]
    assert problems("services: {a: {}}\nbroker: {kind: nats, namespace: Shop.Events}\n") == [
        "souk.yaml:2: broker.namespace: String should match pattern '^[a-z][a-z0-9_-]{0,30}$'"
    ]
    assert problems("broker: {url: 'nats://h:4222?partitions=3'}\nservices: {a: {}}\n") == [
        "souk.yaml:1: broker.url: give partitions under broker, not in the url"
    ]
    assert problems("broker: {url: 'kafka://:9092'}\nservices: {a: {}}\n") == [
        "souk.yaml:1: broker.url: 'kafka://:9092' names no host (expected kafka://host:port)"
    ]
    assert problems("broker: [nats]\nservices: {a: {}}\n") == [
        "souk.yaml:1: broker: give a broker kind (embedded, rabbitmq, nats, kafka), a url, "
        "or a mapping with kind and url"
    ]
