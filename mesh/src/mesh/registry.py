"""Which sidecars are connected, and what each one fronts.

A sidecar introduces itself: its bootstrap carries the instance's service, inbound port,
application address and outbound ports in the node metadata, and the control plane learns
the mesh from the sidecars that connect. A restarted control plane therefore knows the whole
mesh again as soon as the sidecars reconnect, and an instance restarted on a new address is
a new node whose endpoint is pushed to every caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sidecar:
    """One instance's sidecar, as its node metadata describes it."""

    node_id: str
    service: str
    inbound_port: int
    # Where the application listens, for its sidecar only: ``unix:/path`` or ``host:port``.
    app_address: str
    grpc: bool = False
    # callee service -> the local port the application calls it on.
    outbound: Mapping[str, int] = field(default_factory=dict)
    inbound_host: str = "127.0.0.1"

    @classmethod
    def from_metadata(cls, node_id: str, metadata: Mapping[str, Any]) -> Sidecar:
        try:
            return cls(
                node_id=node_id,
                service=str(metadata["service"]),
                inbound_port=int(metadata["inbound_port"]),
                app_address=str(metadata["app"]),
                grpc=bool(metadata.get("grpc", False)),
                outbound={str(k): int(v) for k, v in dict(metadata.get("outbound", {})).items()},
                inbound_host=str(metadata.get("inbound_host", "127.0.0.1")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"node {node_id!r} has incomplete mesh metadata: {error}") from error

    def metadata(self) -> dict[str, Any]:
        """The node metadata a bootstrap carries for this sidecar (the inverse of the above)."""
        return {
            "service": self.service,
            "inbound_port": self.inbound_port,
            "inbound_host": self.inbound_host,
            "app": self.app_address,
            "grpc": self.grpc,
            "outbound": dict(self.outbound),
        }


class Registry:
    """The connected sidecars; ``changed`` wakes every stream when the mesh changes."""

    def __init__(self) -> None:
        self._sidecars: dict[str, Sidecar] = {}
        self._streams: dict[str, int] = {}
        self.generation = 0
        self.changed = asyncio.Condition()

    def sidecars(self) -> list[Sidecar]:
        return sorted(self._sidecars.values(), key=lambda s: s.node_id)

    def instances_of(self, service: str) -> list[Sidecar]:
        return [s for s in self.sidecars() if s.service == service]

    def get(self, node_id: str) -> Sidecar | None:
        return self._sidecars.get(node_id)

    async def connect(self, sidecar: Sidecar) -> None:
        self._streams[sidecar.node_id] = self._streams.get(sidecar.node_id, 0) + 1
        if self._sidecars.get(sidecar.node_id) != sidecar:
            self._sidecars[sidecar.node_id] = sidecar
            await self.bump()

    async def disconnect(self, node_id: str) -> None:
        # ADS and SDS are two streams of one sidecar: it is gone when the last one closes.
        left = self._streams.get(node_id, 0) - 1
        if left > 0:
            self._streams[node_id] = left
            return
        self._streams.pop(node_id, None)
        if self._sidecars.pop(node_id, None) is not None:
            await self.bump()

    async def bump(self) -> None:
        """Something the snapshots are built from changed (a sidecar, a certificate)."""
        async with self.changed:
            self.generation += 1
            self.changed.notify_all()
