"""The other shapes souk.yaml can ask for — Kafka (Strimzi) or NATS instead of RabbitMQ, one
shared database instead of one per service — render into overlays that build and validate
as the committed default does."""

from __future__ import annotations

from pathlib import Path

import pytest

from souk.kubernetes import render, write
from souk.topology import parse_topology

from .conftest import OVERLAYS, ROOT, build
from .test_validation import BUILT_IN_GROUPS, built_in_problems, crd_problems, group_of

DEFAULT = (ROOT / "cli" / "src" / "souk" / "default_topology.yaml").read_text()


@pytest.mark.parametrize(
    ("broker", "engine_kinds"),
    [("kafka", {"Kafka", "KafkaNodePool"}), ("nats", set())],
)
def test_another_broker_and_a_shared_database_build_and_validate(
    tmp_path: Path, broker: str, engine_kinds: set[str]
) -> None:
    text = DEFAULT.replace(
        "data_dir: .souk",
        f"data_dir: .souk\nbroker: {broker}\ndatabase: {{backend: postgres, mode: shared}}",
    )
    write(render(parse_topology(text, "souk.yaml")), tmp_path)
    for overlay in OVERLAYS:
        resources = build(tmp_path / "overlays" / overlay)
        kinds = {r["kind"] for r in resources}
        assert engine_kinds <= kinds
        assert "RabbitmqCluster" not in kinds
        # Both overlays' custom resources (prod patches them); the built-in ones of one.
        problems = [
            f"{r['kind']}/{r['metadata']['name']}: {problem}"
            for r in resources
            if overlay == "dev" or group_of(r) not in BUILT_IN_GROUPS
            for problem in (
                built_in_problems(r) if group_of(r) in BUILT_IN_GROUPS else crd_problems(r)
            )
        ]
        assert problems == []
        (shared,) = [r for r in resources if r["kind"] == "Database"]
        assert shared["spec"]["name"] == "souk"
    prod = build(tmp_path / "overlays" / "prod")
    if broker == "kafka":
        (pool,) = [r for r in prod if r["kind"] == "KafkaNodePool"]
        (kafka,) = [r for r in prod if r["kind"] == "Kafka"]
        assert pool["spec"]["replicas"] == 3
        assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    orders = next(
        r for r in prod if r["kind"] == "Deployment" and r["metadata"]["name"] == "orders"
    )
    env = {
        e["name"]: e.get("value")
        for e in orders["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    expected = {"kafka": "kafka://souk-kafka-kafka-bootstrap:9092", "nats": "nats://souk-nats:4222"}
    assert env["ORDERS_BROKER_URL"] == expected[broker]
