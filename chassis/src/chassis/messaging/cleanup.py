"""Delete what one namespace left on a broker server: its queues, exchanges or streams.

Every broker-side name the adapters make starts with the URL's namespace, so tests (and a
demo being torn down) can give each run a namespace of its own and remove it afterwards
without touching anybody else's. AMQP cannot list a server's queues, so RabbitMQ's are
listed with ``rabbitmqctl`` (it must run as a user that holds the node's cookie: root or
rabbitmq).
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection


async def forget_rabbitmq_namespaces(
    url: str, namespaces: Collection[str], *, rabbitmqctl: str = "rabbitmqctl"
) -> None:
    """Delete the queues and exchanges of ``namespaces`` on the RabbitMQ server at ``url``."""
    import aio_pika  # noqa: PLC0415 - only callers of this function need the client

    prefixes = tuple(f"{namespace}." for namespace in namespaces)
    if not prefixes:
        return
    queues, exchanges = await asyncio.gather(
        _listed(rabbitmqctl, "list_queues"), _listed(rabbitmqctl, "list_exchanges")
    )
    connection = await aio_pika.connect(url.partition("?")[0])
    try:
        channel = await connection.channel()
        for queue in queues:
            if queue.startswith(prefixes):
                await channel.queue_delete(queue)
        for exchange in exchanges:
            if exchange.startswith(prefixes):
                await channel.exchange_delete(exchange)
    finally:
        await connection.close()


async def forget_nats_namespace(url: str, namespace: str) -> None:
    """Delete the JetStream streams (and so their consumers) of ``namespace`` at ``url``."""
    import nats  # noqa: PLC0415 - only callers of this function need the client

    from chassis.messaging.nats import stream_name  # noqa: PLC0415 - nor the adapter

    prefix = stream_name(namespace, "")
    client = await nats.connect(url.partition("?")[0], connect_timeout=2)
    try:
        js = client.jetstream()
        for info in await js.streams_info():
            if info.config.name is not None and info.config.name.startswith(prefix):
                await js.delete_stream(info.config.name)
    finally:
        await client.close()


async def _listed(rabbitmqctl: str, command: str) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        rabbitmqctl, command, "name", "--no-table-headers", "--quiet",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {command} failed: {err.decode().strip()}")
    return out.decode().split()
