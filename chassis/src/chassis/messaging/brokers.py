"""``connect(url)``: the bus adapter a URL names."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from chassis.messaging.bus import MessageBus

SCHEMES = ("embedded", "amqp", "nats", "kafka")
# The chassis's optional extra that brings each networked broker's client library.
EXTRAS = {"amqp": "rabbitmq", "amqps": "rabbitmq", "nats": "nats", "kafka": "kafka"}


def connect(url: str) -> MessageBus:
    """An unstarted bus for ``url``; ``?partitions=N`` sets the partitions per topic.

    ``embedded:///abs/dir`` (a directory shared by the local processes), ``amqp://user:pw@host``,
    ``nats://host:port``, ``kafka://host:port``. Call ``await bus.start()`` before use.
    """
    parts = urlsplit(url)
    try:
        return _adapter(url)
    except ModuleNotFoundError as missing:
        extra = EXTRAS.get(parts.scheme)
        if extra is None or missing.name is None or missing.name.startswith("chassis"):
            raise
        raise BrokerClientMissingError(
            f"a {parts.scheme}:// broker needs {missing.name!r}: install the chassis's "
            f"{extra!r} extra (pip install 'souk-chassis[{extra}]')"
        ) from missing


class BrokerClientMissingError(ImportError):
    """The broker a URL names needs a client library that is not installed."""


def _adapter(url: str) -> MessageBus:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    partitions = int(query.get("partitions", ["8"])[0])
    namespace = query.get("namespace", ["souk"])[0]
    if parts.scheme == "embedded":
        from chassis.messaging.embedded import EmbeddedBus  # noqa: PLC0415

        return EmbeddedBus(parts.path, partitions=partitions, namespace=namespace)
    if parts.scheme in ("amqp", "amqps"):
        from chassis.messaging.rabbitmq import RabbitMqBus  # noqa: PLC0415

        return RabbitMqBus(url, partitions=partitions, namespace=namespace)
    if parts.scheme == "nats":
        from chassis.messaging.nats import NatsBus  # noqa: PLC0415

        return NatsBus(url, partitions=partitions, namespace=namespace)
    if parts.scheme == "kafka":
        from chassis.messaging.kafka import KafkaBus  # noqa: PLC0415

        return KafkaBus(url, partitions=partitions, namespace=namespace)
    raise ValueError(f"broker URL {url!r}: scheme must be one of {', '.join(SCHEMES)}")
