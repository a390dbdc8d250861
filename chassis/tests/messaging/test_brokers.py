"""``connect(url)``: the adapter a URL names, its client library imported only then."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chassis.messaging import connect
from chassis.messaging.brokers import BrokerClientMissingError
from chassis.settings import BrokerSettings, ServiceSettings


def test_a_broker_whose_client_is_not_installed_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "chassis.messaging.rabbitmq", raising=False)
    monkeypatch.setitem(sys.modules, "aio_pika", None)  # as if never installed

    with pytest.raises(BrokerClientMissingError, match=r"souk-chassis\[rabbitmq\]"):
        connect("amqp://guest:guest@127.0.0.1:5672/")


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="scheme must be one of"):
        connect("mqtt://127.0.0.1:1883")


def test_a_service_on_the_embedded_broker_imports_no_broker_client() -> None:
    # Importing a client a service does not use costs start-up time and memory (#12 §5).
    probe = (
        "import sys; import chassis.app, chassis.messaging.lifecycle, chassis.unit_of_work;"
        " from chassis.messaging import connect; connect('embedded:///tmp/souk-probe');"
        " print(sorted(m for m in ('aio_pika', 'nats', 'aiokafka', 'asyncpg') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_partitions_and_namespace_are_settings_of_their_own() -> None:
    broker = BrokerSettings.parse("nats://127.0.0.1:4222", partitions=4, namespace="shop")

    assert (broker.kind, broker.url, broker.partitions, broker.namespace) == (
        "nats",
        "nats://127.0.0.1:4222",
        4,
        "shop",
    )


def test_options_in_a_url_are_read_and_taken_out_of_it() -> None:
    # The older way `souk up` gave them; the broker's own query parameters stay.
    broker = BrokerSettings.parse("amqp://u:p@mq:5673/shop?heartbeat=10&partitions=2&namespace=t1")

    assert (broker.kind, broker.url, broker.partitions, broker.namespace) == (
        "rabbitmq",
        "amqp://u:p@mq:5673/shop?heartbeat=10",
        2,
        "t1",
    )
    assert BrokerSettings.parse("embedded:///srv/bus?partitions=3").url == "embedded:///srv/bus"


def test_a_service_reads_its_broker_from_its_settings(tmp_path: Path) -> None:
    settings = ServiceSettings(service="orders", data_dir=tmp_path, broker_partitions=16)

    broker = settings.broker()

    assert broker == BrokerSettings(f"embedded://{(tmp_path / 'broker').resolve()}", 16, "souk")
    assert connect(broker).partitions == 16
