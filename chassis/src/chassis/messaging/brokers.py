"""``connect(broker)``: the bus adapter the broker settings (or a URL) name."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chassis.settings import BrokerSettings

if TYPE_CHECKING:
    from chassis.messaging.bus import MessageBus


def connect(broker: BrokerSettings | str) -> MessageBus:
    """An unstarted bus for ``broker`` (settings, or a URL that ``BrokerSettings.parse`` reads).

    ``embedded:///abs/dir`` (a directory shared by the local processes), ``amqp://user:pw@host``,
    ``nats://host:port``, ``kafka://host:port``. Call ``await bus.start()`` before use.
    """
    settings = broker if isinstance(broker, BrokerSettings) else BrokerSettings.parse(broker)
    try:
        return _adapter(settings)
    except ModuleNotFoundError as missing:
        # Each networked broker's client is the chassis's extra of the kind's name.
        extra = settings.kind
        if extra == "embedded" or missing.name is None or missing.name.startswith("chassis"):
            raise
        raise BrokerClientMissingError(
            f"a {extra} broker needs {missing.name!r}: install the chassis's "
            f"{extra!r} extra (pip install 'souk-chassis[{extra}]')"
        ) from missing


class BrokerClientMissingError(ImportError):
    """The broker a URL names needs a client library that is not installed."""


def _adapter(broker: BrokerSettings) -> MessageBus:
    url, partitions, namespace = broker.url, broker.partitions, broker.namespace
    if broker.kind == "embedded":
        from chassis.messaging.embedded import EmbeddedBus  # noqa: PLC0415

        return EmbeddedBus(urlsplit(url).path, partitions=partitions, namespace=namespace)
    if broker.kind == "rabbitmq":
        from chassis.messaging.rabbitmq import RabbitMqBus  # noqa: PLC0415

        return RabbitMqBus(url, partitions=partitions, namespace=namespace)
    if broker.kind == "nats":
        from chassis.messaging.nats import NatsBus  # noqa: PLC0415

        return NatsBus(url, partitions=partitions, namespace=namespace)
    from chassis.messaging.kafka import KafkaBus  # noqa: PLC0415

    return KafkaBus(url, partitions=partitions, namespace=namespace)
