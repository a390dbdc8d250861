"""The brokers the contract suite runs against, one module per backend.

Each module has ``serve(tmp_path_factory) -> Iterator[BrokerServer]``, a context manager
that makes the broker available for the whole session (starting a process of its own if it
needs one) or fails under CI=true / skips elsewhere, naming the server that is missing.
"""

from __future__ import annotations

from typing import Protocol

NAMES = ("embedded", "rabbitmq", "nats", "kafka")


class BrokerServer(Protocol):
    name: str
    restartable: str | None
    """None if :meth:`restart` works here, else why it cannot (the test skips saying so)."""

    # A backend whose broker keeps no delivery count per message sets ``no_delivery_count``
    # to say so; the tests that need one skip with that reason.

    def url(self, namespace: str) -> str:
        """A bus URL whose topics, groups and stored messages belong to ``namespace`` only."""
        ...

    def restart(self) -> None:
        """Stop the broker and start it again (blocking until it accepts connections)."""
        ...

    async def forget(self, namespace: str) -> None:
        """Delete what the tests of ``namespace`` left on the broker."""
        ...
