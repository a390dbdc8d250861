"""Consumer contract, orders → inventory: the gRPC calls and fields orders relies on.

The descriptors prove the generated contract still has what orders sends and reads; the
real inventory, run as its own process and checking the token orders gets from the real
identity, proves it answers as orders expects.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import TYPE_CHECKING

import pytest
from google.protobuf.descriptor import FieldDescriptor

from chassis.auth import ClientCredentials, client_credentials_for
from chassis.grpc import GrpcUpstream
from contracts.inventory.v1 import inventory_pb2
from orders.adapters.inventory_client import InventoryClient
from orders.app import CLIENT_SCOPES
from orders.domain.errors import CheckoutRefused, OutOfStock
from orders.service_layer.ports import NoUsableAnswer, StockLine
from orders.settings import OrdersSettings
from services.orders.tests.integration.conftest import free_port, service_process

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["Inventory"]
# In demo stock, with units on hand.
SAFFRON = "SPC-SAFFRON-2G"
ISSUER = "http://localhost:8080"
# Identity's client for orders, with a secret of this run's own (as `souk up` makes one).
ORDERS_SECRET = secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("method", "takes", "answers"),
    [
        ("Reserve", "ReserveRequest", "Reservation"),
        ("Commit", "ReservationRef", "Reservation"),
        ("Release", "ReservationRef", "Reservation"),
        ("GetStock", "GetStockRequest", "StockLevel"),
    ],
)
def test_the_inventory_offers_each_call_orders_makes(method: str, takes: str, answers: str) -> None:
    call = SERVICE.methods_by_name[method]

    assert SERVICE.full_name == "souk.inventory.v1.Inventory"
    assert (call.input_type.name, call.output_type.name) == (takes, answers)


@pytest.mark.parametrize(
    ("message", "field", "kind", "repeated"),
    [
        ("ReserveRequest", "reservation_id", FieldDescriptor.TYPE_STRING, False),
        ("ReserveRequest", "lines", FieldDescriptor.TYPE_MESSAGE, True),
        ("ReserveRequest", "ttl_seconds", FieldDescriptor.TYPE_INT64, False),
        ("ReservationLine", "sku", FieldDescriptor.TYPE_STRING, False),
        ("ReservationLine", "quantity", FieldDescriptor.TYPE_INT64, False),
        ("ReservationRef", "reservation_id", FieldDescriptor.TYPE_STRING, False),
        ("Reservation", "status", FieldDescriptor.TYPE_ENUM, False),
        ("GetStockRequest", "sku", FieldDescriptor.TYPE_STRING, False),
        ("StockLevel", "available", FieldDescriptor.TYPE_INT64, False),
    ],
)
def test_each_field_orders_sends_or_reads_exists_with_its_type(
    message: str, field: str, kind: int, repeated: bool
) -> None:
    descriptor = inventory_pb2.DESCRIPTOR.message_types_by_name[message].fields_by_name[field]

    assert (descriptor.type, descriptor.is_repeated) == (kind, repeated)


def test_reservations_are_lines_and_their_status_tells_holding_from_lapsed() -> None:
    lines = inventory_pb2.ReserveRequest.DESCRIPTOR.fields_by_name["lines"]
    status = inventory_pb2.Reservation.DESCRIPTOR.fields_by_name["status"]

    assert lines.message_type.name == "ReservationLine"
    assert status.enum_type.name == "ReservationStatus"
    assert {
        "RESERVATION_STATUS_RESERVED",
        "RESERVATION_STATUS_COMMITTED",
        "RESERVATION_STATUS_RELEASED",
        "RESERVATION_STATUS_EXPIRED",
    } <= set(status.enum_type.values_by_name)


@pytest.fixture(scope="module")
def identity_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real identity, with its development clients, orders among them."""
    directory = tmp_path_factory.mktemp("identity")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "IDENTITY_PORT": str(port),
        "IDENTITY_DATA_DIR": str(directory),
        "IDENTITY_INSTANCE": "identity-contract",
        "IDENTITY_ISSUER": ISSUER,
        "IDENTITY_CLIENT_SECRETS": json.dumps(
            {"orders": ORDERS_SECRET, "souk-cli": secrets.token_urlsafe(32),
             "bff-web": secrets.token_urlsafe(32)}
        ),
    }  # fmt: skip
    with service_process("identity", env, f"{url}/readyz", directory / "identity.log"):
        yield url


@pytest.fixture(scope="module")
def inventory_target(tmp_path_factory: pytest.TempPathFactory, identity_url: str) -> Iterator[str]:
    """The real inventory, checking tokens of identity's issuer."""
    directory = tmp_path_factory.mktemp("inventory")
    http_port, grpc_port = free_port(), free_port()
    env = {
        "INVENTORY_PORT": str(http_port),
        "INVENTORY_GRPC_PORT": str(grpc_port),
        "INVENTORY_DATA_DIR": str(directory),
        "INVENTORY_INSTANCE": "inventory-contract",
        "INVENTORY_AUTH_ISSUER": ISSUER,
        "INVENTORY_UPSTREAMS": json.dumps({"identity": [identity_url]}),
    }
    ready = f"http://127.0.0.1:{http_port}/readyz"
    with service_process("inventory", env, ready, directory / "inventory.log"):
        yield f"grpc://127.0.0.1:{grpc_port}"


@pytest.fixture
async def orders_tokens(identity_url: str) -> AsyncIterator[ClientCredentials]:
    """Orders' own tokens from identity, as the composition root asks for them."""
    settings = OrdersSettings(upstreams={"identity": [identity_url]})
    tokens = client_credentials_for(
        settings,
        client_id=settings.client_id,
        secret=ORDERS_SECRET,
        scopes=CLIENT_SCOPES,
    )
    yield tokens
    await tokens.close()


@pytest.fixture
async def inventory(
    inventory_target: str, orders_tokens: ClientCredentials
) -> AsyncIterator[InventoryClient]:
    upstream = GrpcUpstream("inventory", [inventory_target], timeout=5)
    yield InventoryClient(upstream, timeout=5, tokens=orders_tokens)
    await upstream.close()


async def test_without_orders_token_the_real_inventory_refuses_to_reserve(
    inventory_target: str,
) -> None:
    upstream = GrpcUpstream("inventory", [inventory_target], timeout=5)
    try:
        with pytest.raises(NoUsableAnswer, match="Reserve: UNAUTHENTICATED") as refused:
            await InventoryClient(upstream, timeout=5).reserve(
                new_id(), [StockLine(SAFFRON, 1)], ttl_seconds=60
            )
    finally:
        await upstream.close()

    assert not refused.value.transient


def new_id() -> str:
    return str(uuid.uuid4())


async def test_the_real_inventory_reserves_and_commits_again_and_again_to_one_effect(
    inventory: InventoryClient,
) -> None:
    reservation = new_id()
    lines = [StockLine(SAFFRON, 1)]

    for _ in range(2):
        await inventory.reserve(reservation, lines, ttl_seconds=60)
    for _ in range(2):
        await inventory.commit(reservation)


async def test_the_real_inventory_releases_again_and_again_and_knows_nothing_to_release(
    inventory: InventoryClient,
) -> None:
    reservation = new_id()
    await inventory.reserve(reservation, [StockLine(SAFFRON, 1)], ttl_seconds=60)

    for _ in range(2):
        await inventory.release(reservation)
    await inventory.release(new_id())


async def test_releasing_a_reservation_the_real_inventory_committed_leaves_it_as_it_is(
    inventory: InventoryClient,
) -> None:
    # A commit whose answer was lost times out and is undone by a release: the stock has
    # left the shelf, so the release ends without effect instead of failing for good.
    reservation = new_id()
    await inventory.reserve(reservation, [StockLine(SAFFRON, 1)], ttl_seconds=60)
    await inventory.commit(reservation)

    for _ in range(2):
        await inventory.release(reservation)
    await inventory.commit(reservation)  # still committed


async def test_a_reservation_the_real_inventory_cannot_fill_names_what_is_short(
    inventory: InventoryClient,
) -> None:
    with pytest.raises(OutOfStock, match=r"^out of stock: SPC-SAFFRON-2G \(\d+ available\)$"):
        await inventory.reserve(new_id(), [StockLine(SAFFRON, 10_000)], ttl_seconds=60)
    with pytest.raises(OutOfStock, match=r"^out of stock: NOT-STOCKED-1 \(0 available\)$"):
        await inventory.reserve(new_id(), [StockLine("NOT-STOCKED-1", 1)], ttl_seconds=60)


async def test_a_released_reservation_cannot_be_committed_nor_reserved_again(
    inventory: InventoryClient,
) -> None:
    reservation = new_id()
    await inventory.reserve(reservation, [StockLine(SAFFRON, 1)], ttl_seconds=60)
    await inventory.release(reservation)

    with pytest.raises(CheckoutRefused, match="lapsed"):
        await inventory.commit(reservation)
    with pytest.raises(CheckoutRefused, match="stock reservation released"):
        await inventory.reserve(reservation, [StockLine(SAFFRON, 1)], ttl_seconds=60)


async def test_an_inventory_that_cannot_be_reached_is_a_transient_failure() -> None:
    upstream = GrpcUpstream("inventory", [f"grpc://127.0.0.1:{free_port()}"], timeout=2)
    try:
        with pytest.raises(NoUsableAnswer) as caught:
            await InventoryClient(upstream, timeout=2).release(new_id())
    finally:
        await upstream.close()

    assert caught.value.transient
