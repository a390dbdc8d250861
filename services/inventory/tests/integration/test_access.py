"""Zero trust: the inventory checks each caller's token itself, over gRPC and over HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chassis.grpc import channel_for
from chassis.testing import readable_bearer
from contracts.inventory.v1 import inventory_pb2 as pb
from contracts.inventory.v1.inventory_pb2_grpc import InventoryStub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from services.inventory.tests.integration.conftest import Replicas

SAFFRON = "SPC-SAFFRON-2G"


def token(*scopes: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", readable_bearer("orders", *scopes)["Authorization"]),)


def reservation() -> pb.ReserveRequest:
    return pb.ReserveRequest(
        reservation_id="order-1", lines=[pb.ReservationLine(sku=SAFFRON, quantity=1)]
    )


@pytest.fixture
async def anonymous(inventory: Replicas) -> AsyncIterator[Any]:
    """The inventory's stub on a channel that sends no token of its own."""
    async with channel_for(inventory.urls) as channel:
        yield InventoryStub(channel)


async def test_a_reservation_without_a_token_is_unauthenticated(
    anonymous: Any, refused: Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[str]]
) -> None:
    details = await refused(
        anonymous.Reserve(reservation(), timeout=5), grpc.StatusCode.UNAUTHENTICATED
    )

    assert "authorization: Bearer" in details


async def test_a_reservation_with_a_forged_token_is_unauthenticated(
    anonymous: Any, refused: Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[str]]
) -> None:
    call = anonymous.Reserve(
        reservation(), timeout=5, metadata=(("authorization", "Bearer forged"),)
    )

    await refused(call, grpc.StatusCode.UNAUTHENTICATED)


@pytest.mark.parametrize("method", ["Reserve", "Commit", "Release", "AdjustStock"])
async def test_changing_stock_with_a_read_only_token_is_permission_denied(
    anonymous: Any,
    refused: Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[str]],
    method: str,
) -> None:
    requests = {
        "Reserve": reservation(),
        "Commit": pb.ReservationRef(reservation_id="order-1"),
        "Release": pb.ReservationRef(reservation_id="order-1"),
        "AdjustStock": pb.AdjustStockRequest(sku=SAFFRON, add=1),
    }
    call = getattr(anonymous, method)(requests[method], timeout=5, metadata=token("stock:read"))

    details = await refused(call, grpc.StatusCode.PERMISSION_DENIED)

    assert details == "This call needs the scope(s): stock:write."


async def test_reading_stock_needs_stock_read(
    anonymous: Any, refused: Callable[[Awaitable[Any], grpc.StatusCode], Awaitable[str]]
) -> None:
    request = pb.GetStockRequest(sku=SAFFRON)

    await refused(
        anonymous.GetStock(request, timeout=5, metadata=token("stock:write")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    level = await anonymous.GetStock(request, timeout=5, metadata=token("stock:read"))
    assert level.sku == SAFFRON


async def test_a_token_with_stock_write_reserves(anonymous: Any) -> None:
    reserved = await anonymous.Reserve(reservation(), timeout=5, metadata=token("stock:write"))

    assert reserved.status == pb.RESERVATION_STATUS_RESERVED


async def test_health_checks_need_no_token(inventory: Replicas) -> None:
    async with channel_for(inventory.urls) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="souk.inventory.v1.Inventory"), timeout=5
        )

    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_operators_stock_levels_need_a_token_with_stock_read(inventory: Replicas) -> None:
    http = inventory.http[0]

    anonymous = await http.get(f"/stock/{SAFFRON}", headers={"Authorization": ""})
    writer = await http.get(f"/stock/{SAFFRON}", headers=readable_bearer("orders", "stock:write"))
    reader = await http.get(f"/stock/{SAFFRON}", headers=readable_bearer("ops", "stock:read"))

    assert (anonymous.status_code, writer.status_code, reader.status_code) == (401, 403, 200)
    assert (await http.get("/healthz", headers={"Authorization": ""})).status_code == 200
