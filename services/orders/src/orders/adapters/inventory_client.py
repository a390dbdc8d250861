"""The inventory's reservations over gRPC (``souk.inventory.v1.Inventory``).

The reservation id is the order id, and Reserve, Commit and Release are idempotent by it,
so any call may be made again after a lost answer. Releasing a committed reservation
leaves it as it is (the stock has left the shelf), so undoing a commit in doubt ends.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

import grpc

from chassis.auth import TokenUnavailableError
from chassis.upstream import UpstreamFailure
from contracts.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from orders.adapters.upstream_errors import port_errors
from orders.domain.errors import CheckoutRefused, OutOfStock

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chassis.auth import AccessTokenSource
    from chassis.grpc import GrpcUpstream
    from orders.service_layer.ports import StockLine

# Codes that say "not now": the same call may succeed later, or on another replica.
_TRANSIENT: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
_HOLDING: Final = frozenset(
    {inventory_pb2.RESERVATION_STATUS_RESERVED, inventory_pb2.RESERVATION_STATUS_COMMITTED}
)


class InventoryClient:
    """Implements the Inventory port on the inventory replicas (a ``GrpcUpstream``).

    Every call is idempotent by the reservation id, so each is retried on the next replica
    when one does not answer, and a replica whose breaker is open gets none. With
    ``tokens``, every call carries orders' access token as ``authorization`` metadata.
    """

    def __init__(
        self,
        upstream: GrpcUpstream,
        *,
        timeout: float,
        tokens: AccessTokenSource | None = None,
    ) -> None:
        self._upstream = upstream
        self._stubs: dict[int, inventory_pb2_grpc.InventoryStub] = {}
        self._timeout = timeout
        self._tokens = tokens

    def _stub(self, channel: grpc.aio.Channel) -> inventory_pb2_grpc.InventoryStub:
        stub = self._stubs.get(id(channel))
        if stub is None:
            stub = self._stubs[id(channel)] = inventory_pb2_grpc.InventoryStub(channel)
        return stub

    @port_errors
    async def reserve(
        self, reservation_id: str, lines: Sequence[StockLine], *, ttl_seconds: int
    ) -> None:
        request = inventory_pb2.ReserveRequest(
            reservation_id=reservation_id,
            lines=[
                inventory_pb2.ReservationLine(sku=line.sku, quantity=line.quantity)
                for line in lines
            ],
            ttl_seconds=ttl_seconds,
        )
        try:
            metadata = await self._metadata("Reserve")
            reservation = await self._upstream.call(
                lambda channel: self._stub(channel).Reserve(
                    request, timeout=self._timeout, metadata=metadata
                ),
                safe=True,
            )
        except grpc.aio.AioRpcError as error:
            # NOT_FOUND: a SKU the inventory does not stock, which is none available.
            if error.code() in {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND}:
                raise OutOfStock(await self._shortage(lines, error.details() or "")) from error
            raise _failure("Reserve", error) from error
        if reservation.status not in _HOLDING:
            # The id was reserved before (a repeated step) and that reservation has lapsed.
            raise CheckoutRefused(f"stock reservation {_status_name(reservation.status)}")

    @port_errors
    async def commit(self, reservation_id: str) -> None:
        request = inventory_pb2.ReservationRef(reservation_id=reservation_id)
        try:
            metadata = await self._metadata("Commit")
            await self._upstream.call(
                lambda channel: self._stub(channel).Commit(
                    request, timeout=self._timeout, metadata=metadata
                ),
                safe=True,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND}:
                raise CheckoutRefused(f"stock reservation lapsed: {error.details()}") from error
            raise _failure("Commit", error) from error

    @port_errors
    async def release(self, reservation_id: str) -> None:
        request = inventory_pb2.ReservationRef(reservation_id=reservation_id)
        try:
            metadata = await self._metadata("Release")
            await self._upstream.call(
                lambda channel: self._stub(channel).Release(
                    request, timeout=self._timeout, metadata=metadata
                ),
                safe=True,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return
            if error.code() is grpc.StatusCode.FAILED_PRECONDITION:
                # Committed (a commit in doubt, undone): the stock has left the shelf and
                # comes back only with the goods, so the reservation is left as it is.
                return
            raise _failure("Release", error) from error

    @port_errors
    async def return_stock(self, reservation_id: str) -> None:
        request = inventory_pb2.ReservationRef(reservation_id=reservation_id)
        try:
            metadata = await self._metadata("Return")
            await self._upstream.call(
                lambda channel: self._stub(channel).Return(
                    request, timeout=self._timeout, metadata=metadata
                ),
                safe=True,
            )
        except grpc.aio.AioRpcError as error:
            # Never reserved, or never committed (released, expired, or a commit in doubt
            # that did not happen): no stock left the shelf, so none comes back.
            if error.code() in {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION}:
                return
            raise _failure("Return", error) from error

    async def _metadata(self, method: str) -> tuple[tuple[str, str], ...]:
        if self._tokens is None:
            return ()
        try:
            return (("authorization", f"Bearer {await self._tokens.token()}"),)
        except TokenUnavailableError as error:
            raise UpstreamFailure(
                "inventory", f"{method}: {error}", transient=error.transient
            ) from error

    async def _level(
        self, sku: str, metadata: tuple[tuple[str, str], ...], channel: grpc.aio.Channel
    ) -> inventory_pb2.StockLevel:
        level: inventory_pb2.StockLevel = await self._stub(channel).GetStock(
            inventory_pb2.GetStockRequest(sku=sku), timeout=self._timeout, metadata=metadata
        )
        return level

    async def _shortage(self, lines: Sequence[StockLine], details: str) -> str:
        """``SKU (n available)`` for each short line; the refusal's own words if unsure."""
        named = [line for line in lines if line.sku in details] or list(lines)
        short = []
        for line in named:
            try:
                level = await self._upstream.call(
                    functools.partial(self._level, line.sku, await self._metadata("GetStock")),
                    safe=True,
                )
                available = level.available
            except UpstreamFailure:
                return details
            except grpc.aio.AioRpcError as error:
                if error.code() is not grpc.StatusCode.NOT_FOUND:
                    return details
                available = 0
            if available < line.quantity:
                short.append(f"{line.sku} ({available} available)")
        return ", ".join(short) or details


def _failure(method: str, error: grpc.aio.AioRpcError) -> UpstreamFailure:
    return UpstreamFailure(
        "inventory",
        f"{method}: {error.code().name} {error.details() or ''}".rstrip(),
        transient=error.code() in _TRANSIENT,
    )


def _status_name(status: int) -> str:
    return inventory_pb2.ReservationStatus.Name(status).removeprefix("RESERVATION_STATUS_").lower()
