"""The embedded broker for the contract suite: a SQLite file in this session's temp dir."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import pytest


@dataclass
class EmbeddedServer:
    directory: Path
    name: str = "embedded"
    restartable: str | None = (
        "the embedded broker has no server to restart: it is a file the processes share"
    )

    def url(self, namespace: str) -> str:
        return f"embedded://{self.directory}?namespace={namespace}"

    def restart(self) -> None:
        raise NotImplementedError(self.restartable)

    async def forget(self, namespace: str) -> None:
        """Nothing to do: each test has its namespace, and the temp dir goes with the session."""


@contextlib.contextmanager
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    yield EmbeddedServer(tmp_path_factory.mktemp("embedded-broker"))
