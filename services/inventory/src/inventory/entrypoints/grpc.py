"""The gRPC API: parse the request, call the service layer, shape the answer.

Every method goes through ``_answered``, the one place where the caller's deadline is
honoured and domain errors become gRPC status codes. The methods are named by the
contract, hence CapWords (N802).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import grpc

from chassis.resilience import deadline
from chassis.unit_of_work import StorageUnavailableError
from contracts.inventory.v1 import inventory_pb2 as pb
from contracts.inventory.v1 import inventory_pb2_grpc
from inventory.domain.commands import (
    AdjustStock,
    CommitReservation,
    ReleaseReservation,
    ReserveStock,
    ReturnReservation,
)
from inventory.domain.errors import (
    ConcurrentChange,
    InvalidReservation,
    InvalidStockItem,
    InventoryError,
    OutOfStock,
    ReservationClosed,
    ReservationConflict,
    ReservationNotFound,
    StockStillReserved,
    UnknownSku,
)
from inventory.domain.model import ReservationLine, ReservationStatus
from inventory.service_layer import handlers, queries

if TYPE_CHECKING:
    from inventory.domain.model import Reservation, StockItem
    from inventory.service_layer.ports import Clock, UnitOfWorkFactory

SERVICE_NAME: Final = pb.DESCRIPTOR.services_by_name["Inventory"].full_name
# What a caller's token must grant, per method; the server refuses every call without one.
REQUIRED_SCOPES: Final = {
    f"/{SERVICE_NAME}/{method}": scopes
    for method, scopes in {
        "GetStock": ["stock:read"],
        "GetReservation": ["stock:read"],
        "AdjustStock": ["stock:write"],
        "Reserve": ["stock:write"],
        "Commit": ["stock:write"],
        "Release": ["stock:write"],
        "Return": ["stock:write"],
    }.items()
}
# Below this, a call would most likely run out of time half-way: refuse it before starting.
MIN_SECONDS_TO_WORK: Final = 0.05

Context = grpc.aio.ServicerContext[Any, Any]
Request = TypeVar("Request")
Response = TypeVar("Response")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_STATUSES: Final = {
    ReservationStatus.RESERVED: pb.RESERVATION_STATUS_RESERVED,
    ReservationStatus.COMMITTED: pb.RESERVATION_STATUS_COMMITTED,
    ReservationStatus.RELEASED: pb.RESERVATION_STATUS_RELEASED,
    ReservationStatus.EXPIRED: pb.RESERVATION_STATUS_EXPIRED,
    ReservationStatus.RETURNED: pb.RESERVATION_STATUS_RETURNED,
}


def status_code_for(error: InventoryError) -> grpc.StatusCode:
    """The gRPC status code that answers a domain error."""
    match error:
        case UnknownSku() | ReservationNotFound():
            return grpc.StatusCode.NOT_FOUND
        case InvalidStockItem() | InvalidReservation():
            return grpc.StatusCode.INVALID_ARGUMENT
        case ReservationConflict():
            return grpc.StatusCode.ALREADY_EXISTS
        case ConcurrentChange():
            return grpc.StatusCode.ABORTED
        case OutOfStock() | StockStillReserved() | ReservationClosed():
            return grpc.StatusCode.FAILED_PRECONDITION
        case _:
            # A new rule without its own mapping is still about the state of the inventory.
            return grpc.StatusCode.FAILED_PRECONDITION


def _answered(
    method: Callable[[InventoryServicer, Request], Awaitable[Response]],
) -> Callable[[InventoryServicer, Request, Context], Awaitable[Response]]:
    """The servicer method for ``method``, which needs only the request."""

    @functools.wraps(method)
    async def answer(self: InventoryServicer, request: Request, context: Context) -> Response:
        # None without a deadline, whatever the stubs say.
        remaining = cast("float | None", context.time_remaining())
        if remaining is not None and remaining < MIN_SECONDS_TO_WORK:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"{remaining * 1000:.0f} ms left of the deadline: too little to start",
            )
        # The work is bounded by what is left of the caller's deadline: past it the caller
        # has given up, so a wait for a lock or a slow statement is abandoned (rolled back),
        # not finished for nobody.
        bound = contextlib.nullcontext() if remaining is None else asyncio.timeout(remaining)
        try:
            with deadline.within(remaining):
                async with bound:
                    return await method(self, request)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the work was done"
            )
        except InventoryError as error:
            await context.abort(status_code_for(error), str(error))
        except StorageUnavailableError as error:
            # A passing condition (locked, connection lost): callers may retry.
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return answer


class InventoryServicer(inventory_pb2_grpc.InventoryServicer):
    """``souk.inventory.v1.Inventory`` on the service layer."""

    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow_factory
        self._clock = clock

    @_answered
    async def GetStock(self, request: pb.GetStockRequest) -> pb.StockLevel:
        return _stock_level(await queries.stock_level(self._uow(), request.sku))

    @_answered
    async def AdjustStock(self, request: pb.AdjustStockRequest) -> pb.StockLevel:
        adjustment = request.WhichOneof("adjustment")
        command = AdjustStock(
            sku=request.sku,
            set_on_hand=request.set_on_hand if adjustment == "set_on_hand" else None,
            add=request.add if adjustment == "add" else None,
        )
        return _stock_level(await handlers.adjust_stock(command, self._uow()))

    @_answered
    async def Reserve(self, request: pb.ReserveRequest) -> pb.Reservation:
        command = ReserveStock(
            reservation_id=request.reservation_id,
            lines=tuple(
                ReservationLine(sku=line.sku, quantity=line.quantity) for line in request.lines
            ),
            ttl_seconds=request.ttl_seconds or None,
        )
        return _reservation(await handlers.reserve_stock(command, self._uow(), self._clock))

    @_answered
    async def Commit(self, request: pb.ReservationRef) -> pb.Reservation:
        command = CommitReservation(reservation_id=request.reservation_id)
        return _reservation(await handlers.commit_reservation(command, self._uow(), self._clock))

    @_answered
    async def Release(self, request: pb.ReservationRef) -> pb.Reservation:
        command = ReleaseReservation(reservation_id=request.reservation_id)
        return _reservation(await handlers.release_reservation(command, self._uow()))

    @_answered
    async def Return(self, request: pb.ReservationRef) -> pb.Reservation:
        command = ReturnReservation(reservation_id=request.reservation_id)
        return _reservation(await handlers.return_reservation(command, self._uow()))

    @_answered
    async def GetReservation(self, request: pb.ReservationRef) -> pb.Reservation:
        return _reservation(await queries.get_reservation(self._uow(), request.reservation_id))


def _stock_level(item: StockItem) -> pb.StockLevel:
    return pb.StockLevel(
        sku=item.sku, on_hand=item.on_hand, reserved=item.reserved, available=item.available
    )


def _reservation(reservation: Reservation) -> pb.Reservation:
    return pb.Reservation(
        reservation_id=reservation.id,
        lines=[
            pb.ReservationLine(sku=line.sku, quantity=line.quantity) for line in reservation.lines
        ],
        status=_STATUSES[reservation.status],
        expires_at_unix_ms=(reservation.expires_at - _EPOCH) // timedelta(milliseconds=1),
    )
