"""The gateway's own operational routes answer the operators' networks only.

``/healthz``, ``/readyz`` and ``/metrics`` tell whoever asks how busy the shop is and which
routes fail; the supervisor, the console and Prometheus read them from the same host. To a
client from anywhere else they do not exist: the same 404 as any path no route serves.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import TYPE_CHECKING

from chassis import problem_response

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.types import ASGIApp, Receive, Scope, Send

# The chassis serves these on every process; on the gateway they are the operators' only.
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class OpsNetworksOnlyMiddleware:
    """Answers the ops paths with a 404 problem unless the client is in ``networks``.

    The client is the ASGI scope's, which uvicorn took from ``X-Forwarded-For`` only when a
    trusted proxy (``forwarded_allow_ips``) sent it.
    """

    def __init__(self, app: ASGIApp, *, networks: Iterable[IPv4Network | IPv6Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in OPS_PATHS and not self._ops(scope):
            response = problem_response(
                404, "no-route", "No route", f"No service serves {scope['path']}"
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _ops(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            return False
        try:
            address = ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.networks)
