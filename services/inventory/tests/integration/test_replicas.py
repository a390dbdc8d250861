"""Two replicas on one SQLite file: seeded once, and never oversold under concurrent calls."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc

from contracts.inventory.v1 import inventory_pb2 as pb

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

    from inventory.settings import InventorySettings
    from services.inventory.tests.integration.conftest import Replicas

    Serve = Callable[..., contextlib.AbstractAsyncContextManager[Replicas]]

SAFFRON = "SPC-SAFFRON-2G"


async def outcomes(*calls: Any) -> list[str]:
    """Each call's status code name, all calls in flight at once."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    return [
        result.code().name if isinstance(result, grpc.aio.AioRpcError) else "OK"
        for result in results
    ]


def reserve(reservation_id: str, quantity: int = 1) -> pb.ReserveRequest:
    return pb.ReserveRequest(
        reservation_id=reservation_id, lines=[pb.ReservationLine(sku=SAFFRON, quantity=quantity)]
    )


async def stock_of(replicas: Replicas) -> pb.StockLevel:
    return await replicas.stub.GetStock(pb.GetStockRequest(sku=SAFFRON))  # type: ignore[no-any-return]


def two(make_settings: Callable[..., InventorySettings]) -> list[InventorySettings]:
    return [make_settings(instance=f"inventory-{n}") for n in (1, 2)]


async def test_two_replicas_started_together_seed_the_demo_stock_once(
    serve: Serve, make_settings: Callable[..., InventorySettings]
) -> None:
    async with serve(*two(make_settings)) as replicas:
        stock = await stock_of(replicas)
        ready = [(await http.get("/readyz")).status_code for http in replicas.http]

    assert stock.on_hand == 25
    assert ready == [200, 200]


async def test_many_concurrent_reservations_across_replicas_never_oversell(
    serve: Serve, make_settings: Callable[..., InventorySettings]
) -> None:
    async with serve(*two(make_settings)) as replicas:
        await replicas.stub.AdjustStock(pb.AdjustStockRequest(sku=SAFFRON, set_on_hand=10))

        results = await outcomes(*(replicas.stub.Reserve(reserve(f"order-{n}")) for n in range(40)))
        stock = await stock_of(replicas)

    assert results.count("OK") == 10
    assert results.count("FAILED_PRECONDITION") == 30
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 10, 0)


async def test_concurrent_repeats_of_one_reservation_hold_its_stock_once(
    serve: Serve, make_settings: Callable[..., InventorySettings]
) -> None:
    async with serve(*two(make_settings)) as replicas:
        results = await outcomes(*(replicas.stub.Reserve(reserve("order-1", 3)) for _ in range(10)))
        stock = await stock_of(replicas)

    assert results == ["OK"] * 10
    assert (stock.on_hand, stock.reserved) == (25, 3)


async def test_concurrent_commits_and_releases_of_one_reservation_move_its_stock_once(
    serve: Serve, make_settings: Callable[..., InventorySettings]
) -> None:
    async with serve(*two(make_settings)) as replicas:
        await replicas.stub.Reserve(reserve("order-1", 3))
        ref = pb.ReservationRef(reservation_id="order-1")
        results = await outcomes(
            *(replicas.stub.Commit(ref) for _ in range(6)),
            *(replicas.stub.Release(ref) for _ in range(6)),
        )
        stock = await stock_of(replicas)
        status = (await replicas.stub.GetReservation(ref)).status

    expected = {
        pb.RESERVATION_STATUS_COMMITTED: (["OK"] * 6 + ["FAILED_PRECONDITION"] * 6, (22, 0)),
        pb.RESERVATION_STATUS_RELEASED: (["FAILED_PRECONDITION"] * 6 + ["OK"] * 6, (25, 0)),
    }
    assert (results, (stock.on_hand, stock.reserved)) == expected[status]
