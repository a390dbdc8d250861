"""The gRPC API, served for real on a free port, called over a real channel."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from chassis.testing import readable_bearer
from contracts.inventory.v1 import inventory_pb2 as pb
from inventory.service_layer import handlers

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from services.inventory.tests.integration.conftest import Replicas

    Refused = Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[str]]

SERVICE = "souk.inventory.v1.Inventory"
SAFFRON = "SPC-SAFFRON-2G"  # 25 in the demo stock
BENI_OURAIN = "RUG-BENI-OURAIN-170X240"  # 3
DJELLABA = "TEX-DJELLABA-LINEN-M"  # sold out


def line(sku: str, quantity: int) -> pb.ReservationLine:
    return pb.ReservationLine(sku=sku, quantity=quantity)


def reserve(reservation_id: str = "order-1", *lines: pb.ReservationLine, ttl: int = 0) -> Any:
    return pb.ReserveRequest(
        reservation_id=reservation_id,
        lines=lines or [line(SAFFRON, 2), line(BENI_OURAIN, 1)],
        ttl_seconds=ttl,
    )


def ref(reservation_id: str = "order-1") -> pb.ReservationRef:
    return pb.ReservationRef(reservation_id=reservation_id)


async def level(inventory: Replicas, sku: str) -> tuple[int, int, int]:
    stock = await inventory.stub.GetStock(pb.GetStockRequest(sku=sku))
    return stock.on_hand, stock.reserved, stock.available


async def test_the_stock_of_a_demo_sku_is_on_hand_reserved_and_available(
    inventory: Replicas,
) -> None:
    stock = await inventory.stub.GetStock(pb.GetStockRequest(sku=SAFFRON))

    assert stock == pb.StockLevel(sku=SAFFRON, on_hand=25, reserved=0, available=25)


async def test_unknown_and_malformed_skus_are_not_found_and_invalid(
    inventory: Replicas, refused: Refused
) -> None:
    await refused(
        inventory.stub.GetStock(pb.GetStockRequest(sku="TEA-NONE")), grpc.StatusCode.NOT_FOUND
    )
    await refused(
        inventory.stub.GetStock(pb.GetStockRequest(sku="tea none")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_a_reservation_holds_every_line_until_its_expiry_time(inventory: Replicas) -> None:
    before = time.time()

    reservation = await inventory.stub.Reserve(reserve(ttl=120))

    assert reservation.reservation_id == "order-1"
    assert reservation.status == pb.RESERVATION_STATUS_RESERVED
    assert list(reservation.lines) == [line(BENI_OURAIN, 1), line(SAFFRON, 2)]
    assert 119_000 <= reservation.expires_at_unix_ms - before * 1000 <= 121_000
    assert await inventory.stub.GetReservation(ref()) == reservation
    assert await level(inventory, SAFFRON) == (25, 2, 23)
    assert await level(inventory, BENI_OURAIN) == (3, 1, 2)


async def test_reserving_again_with_the_same_lines_answers_the_same_reservation_once(
    inventory: Replicas,
) -> None:
    first = await inventory.stub.Reserve(reserve())

    again = await inventory.stub.Reserve(reserve("order-1", line(BENI_OURAIN, 1), line(SAFFRON, 2)))

    assert again == first
    assert await level(inventory, SAFFRON) == (25, 2, 23)


async def test_reserving_an_id_again_with_other_lines_already_exists(
    inventory: Replicas, refused: Refused
) -> None:
    await inventory.stub.Reserve(reserve())

    await refused(
        inventory.stub.Reserve(reserve("order-1", line(SAFFRON, 3))),
        grpc.StatusCode.ALREADY_EXISTS,
    )


async def test_out_of_stock_names_the_sku_and_what_is_available_and_holds_nothing(
    inventory: Replicas, refused: Refused
) -> None:
    details = await refused(
        inventory.stub.Reserve(reserve("order-1", line(SAFFRON, 2), line(BENI_OURAIN, 4))),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    assert details == f"{BENI_OURAIN}: 4 requested, 3 available"
    assert await level(inventory, SAFFRON) == (25, 0, 25)
    await refused(inventory.stub.GetReservation(ref()), grpc.StatusCode.NOT_FOUND)


async def test_a_sold_out_sku_cannot_be_reserved(inventory: Replicas, refused: Refused) -> None:
    await refused(
        inventory.stub.Reserve(reserve("order-1", line(DJELLABA, 1))),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (reserve("order-1", line("TEA-NONE", 1)), grpc.StatusCode.NOT_FOUND),
        (pb.ReserveRequest(reservation_id="order-1"), grpc.StatusCode.INVALID_ARGUMENT),
        (reserve("order-1", line(SAFFRON, 0)), grpc.StatusCode.INVALID_ARGUMENT),
        (reserve("", line(SAFFRON, 1)), grpc.StatusCode.INVALID_ARGUMENT),
        (reserve("order 1", line(SAFFRON, 1)), grpc.StatusCode.INVALID_ARGUMENT),
        (reserve("order-1", line(SAFFRON, 1), line(SAFFRON, 1)), grpc.StatusCode.INVALID_ARGUMENT),
        (reserve("order-1", line(SAFFRON, 1), ttl=-5), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_a_reservation_the_inventory_cannot_understand_is_refused_with_its_code(
    inventory: Replicas, refused: Refused, request_: pb.ReserveRequest, code: grpc.StatusCode
) -> None:
    await refused(inventory.stub.Reserve(request_), code)

    assert await level(inventory, SAFFRON) == (25, 0, 25)


async def test_committing_ships_the_stock_and_committing_again_answers_the_same(
    inventory: Replicas,
) -> None:
    await inventory.stub.Reserve(reserve())

    first = await inventory.stub.Commit(ref())
    again = await inventory.stub.Commit(ref())

    assert first == again
    assert first.status == pb.RESERVATION_STATUS_COMMITTED
    assert await level(inventory, SAFFRON) == (23, 0, 23)
    assert await level(inventory, BENI_OURAIN) == (2, 0, 2)


async def test_releasing_returns_the_stock_and_releasing_again_answers_the_same(
    inventory: Replicas,
) -> None:
    await inventory.stub.Reserve(reserve())

    first = await inventory.stub.Release(ref())
    again = await inventory.stub.Release(ref())

    assert first == again
    assert first.status == pb.RESERVATION_STATUS_RELEASED
    assert await level(inventory, SAFFRON) == (25, 0, 25)


async def test_a_released_reservation_cannot_be_committed_nor_a_committed_one_released(
    inventory: Replicas, refused: Refused
) -> None:
    await inventory.stub.Reserve(reserve("released"))
    await inventory.stub.Reserve(reserve("committed"))
    await inventory.stub.Release(ref("released"))
    await inventory.stub.Commit(ref("committed"))

    await refused(inventory.stub.Commit(ref("released")), grpc.StatusCode.FAILED_PRECONDITION)
    await refused(inventory.stub.Release(ref("committed")), grpc.StatusCode.FAILED_PRECONDITION)


async def test_an_unknown_reservation_is_not_found_and_a_blank_id_invalid(
    inventory: Replicas, refused: Refused
) -> None:
    for call in (inventory.stub.Commit, inventory.stub.Release, inventory.stub.GetReservation):
        await refused(call(ref("nobody")), grpc.StatusCode.NOT_FOUND)
        await refused(call(ref("")), grpc.StatusCode.INVALID_ARGUMENT)


async def test_a_stock_take_sets_and_a_delivery_adds_units_on_hand(inventory: Replicas) -> None:
    counted = await inventory.stub.AdjustStock(pb.AdjustStockRequest(sku=SAFFRON, set_on_hand=7))
    delivered = await inventory.stub.AdjustStock(pb.AdjustStockRequest(sku=SAFFRON, add=5))
    new = await inventory.stub.AdjustStock(pb.AdjustStockRequest(sku="TEA-NEW-1", add=4))

    assert (counted.on_hand, delivered.on_hand, delivered.available) == (7, 12, 12)
    assert (new.sku, new.on_hand) == ("TEA-NEW-1", 4)


async def test_an_adjustment_must_say_what_to_do_and_leave_the_reserved_units(
    inventory: Replicas, refused: Refused
) -> None:
    await inventory.stub.Reserve(reserve())

    await refused(
        inventory.stub.AdjustStock(pb.AdjustStockRequest(sku=SAFFRON)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await refused(
        inventory.stub.AdjustStock(pb.AdjustStockRequest(sku=SAFFRON, set_on_hand=1)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_a_call_with_too_little_time_left_is_refused_before_any_work(
    inventory: Replicas, refused: Refused, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A generous deadline against a higher bar: the server, not the caller's clock, refuses.
    monkeypatch.setattr("inventory.entrypoints.grpc.MIN_SECONDS_TO_WORK", 30.0)
    await inventory.channel.channel_ready()

    details = await refused(
        inventory.stub.Reserve(reserve(), timeout=5.0), grpc.StatusCode.DEADLINE_EXCEEDED
    )

    assert "too little to start" in details
    await refused(inventory.stub.GetReservation(ref()), grpc.StatusCode.NOT_FOUND)


async def test_the_health_checking_protocol_answers_serving_for_the_inventory(
    inventory: Replicas,
) -> None:
    health = health_pb2_grpc.HealthStub(inventory.channel)

    for service in (SERVICE, ""):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_inventory_and_describes_it(inventory: Replicas) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(inventory.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]

    listed, described = [answer async for answer in reflection.ServerReflectionInfo(iter(requests))]

    assert SERVICE in {s.name for s in listed.list_services_response.service}
    assert described.file_descriptor_response.file_descriptor_proto


async def test_the_http_side_is_ready_with_its_grpc_server_and_shows_stock_levels(
    inventory: Replicas,
) -> None:
    http = inventory.http[0]
    operator = readable_bearer("ops", "stock:read")
    ready = await http.get("/readyz")
    one = await http.get(f"/stock/{SAFFRON}", headers=operator)
    several = await http.get(
        "/stock", params={"skus": f"{SAFFRON},TEA-NONE,{DJELLABA}"}, headers=operator
    )
    unknown = await http.get("/stock/TEA-NONE", headers=operator)

    assert (ready.status_code, ready.json()["checks"]["grpc"]) == (200, "ok")
    assert one.json() == {"sku": SAFFRON, "on_hand": 25, "reserved": 0, "available": 25}
    assert [s["sku"] for s in several.json()] == [SAFFRON, DJELLABA]
    assert (unknown.status_code, unknown.json()["type"]) == (
        404,
        "https://souk.dev/problems/unknown-sku",
    )


async def test_an_abandoned_reservation_expires_and_its_stock_returns(
    serve: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    async with serve(make_settings(expiry_interval_seconds=0.05)) as inventory:
        await inventory.stub.Reserve(reserve(ttl=1))
        status = pb.RESERVATION_STATUS_RESERVED
        for _ in range(60):
            await asyncio.sleep(0.05)
            status = (await inventory.stub.GetReservation(ref())).status
            if status != pb.RESERVATION_STATUS_RESERVED:
                break

        assert status == pb.RESERVATION_STATUS_EXPIRED
        assert await level(inventory, SAFFRON) == (25, 0, 25)


async def test_returning_a_committed_reservation_puts_its_stock_back_once(
    inventory: Replicas, refused: Refused
) -> None:
    await inventory.stub.Reserve(reserve())
    await inventory.stub.Commit(ref())
    assert await level(inventory, SAFFRON) == (23, 0, 23)

    first = await inventory.stub.Return(ref())
    again = await inventory.stub.Return(ref())  # a redelivered compensation

    assert first == again
    assert first.status == pb.RESERVATION_STATUS_RETURNED
    assert await level(inventory, SAFFRON) == (25, 0, 25)
    await refused(inventory.stub.Release(ref()), grpc.StatusCode.FAILED_PRECONDITION)


async def test_only_a_committed_reservation_can_be_returned(
    inventory: Replicas, refused: Refused
) -> None:
    await inventory.stub.Reserve(reserve())

    await refused(inventory.stub.Return(ref()), grpc.StatusCode.FAILED_PRECONDITION)
    await refused(inventory.stub.Return(ref("nobody")), grpc.StatusCode.NOT_FOUND)
    assert await level(inventory, SAFFRON) == (25, 2, 23)


async def test_a_call_with_200_ms_left_does_not_keep_inventory_working_after_it(
    inventory: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reserving takes 2 s this time (a lock held elsewhere, a slow disk): the caller gives
    # up after 200 ms, and inventory must not go on to reserve for nobody.
    reserve_stock = handlers.reserve_stock
    finished: list[str] = []

    async def slow_reserve(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(2)
        reservation = await reserve_stock(*args, **kwargs)
        finished.append(reservation.id)
        return reservation

    monkeypatch.setattr(handlers, "reserve_stock", slow_reserve)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await inventory.stub.Reserve(reserve("late"), timeout=0.2)
    await asyncio.sleep(2.5)

    assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - started < 4
    assert finished == []  # the work stopped at the deadline
    monkeypatch.undo()
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await inventory.stub.GetReservation(ref("late"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert await level(inventory, SAFFRON) == (25, 0, 25)
