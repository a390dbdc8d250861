"""Stock levels from inventory over gRPC (``GetStock``), with the storefront's own token.

`souk up` gives a gRPC service's callers its gRPC addresses only, so the storefront reads
stock the way orders does; the call needs ``stock:read``, which the storefront's client
credentials grant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import grpc

from bff_web.domain.shop import StockLevel
from chassis.auth import TokenUnavailableError
from chassis.upstream import UpstreamFailure
from contracts.inventory.v1 import inventory_pb2, inventory_pb2_grpc

if TYPE_CHECKING:
    from chassis.auth import AccessTokenSource

_NAME: Final = "inventory"
_TRANSIENT: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


class InventoryClient:
    """Implements the Stock port on one channel to every inventory replica."""

    def __init__(
        self, channel: grpc.aio.Channel, *, timeout: float, tokens: AccessTokenSource
    ) -> None:
        self._stub = inventory_pb2_grpc.InventoryStub(channel)
        self._timeout = timeout
        self._tokens = tokens

    async def level(self, sku: str) -> StockLevel | None:
        try:
            token = await self._tokens.token()
        except TokenUnavailableError as error:
            raise UpstreamFailure(_NAME, f"GetStock: {error}", transient=error.transient) from error
        try:
            level = await self._stub.GetStock(
                inventory_pb2.GetStockRequest(sku=sku),
                timeout=self._timeout,
                metadata=(("authorization", f"Bearer {token}"),),
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise UpstreamFailure(
                _NAME,
                f"GetStock: {error.code().name} {error.details() or ''}".rstrip(),
                transient=error.code() in _TRANSIENT,
            ) from error
        return StockLevel(sku=level.sku, available=int(level.available))
