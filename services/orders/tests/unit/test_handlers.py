"""Placing orders once per Idempotency-Key, cancelling them, and finding them again."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from orders.domain.commands import CancelOrder
from orders.domain.errors import IdempotencyKeyReused, OrderNotCancellable, OrderNotFound
from orders.domain.model import OrderStatus, Step
from orders.service_layer.handlers import cancel_order, place_order
from orders.service_layer.queries import MAX_PAGE_SIZE, get_order, list_orders
from services.orders.tests.unit.conftest import place_command
from services.orders.tests.unit.fakes import FakeUnitOfWork

if TYPE_CHECKING:
    from services.orders.tests.unit.fakes import FakeStore


async def test_placing_an_order_stores_it_pending_with_its_key(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    placement = await place_order(place_command(("p-tea", 2)), uow)

    assert not placement.replayed
    assert placement.order.status is OrderStatus.PENDING
    assert store.orders[placement.order.id].lines[0].quantity == 2
    assert store.keys["key-1"].order_id == placement.order.id


async def test_the_same_request_with_the_same_key_answers_the_order_it_placed(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    first = await place_order(place_command(("p-tea", 2)), uow)
    again = await place_order(place_command(("p-tea", 2)), uow)

    assert again.replayed
    assert again.order.id == first.order.id
    assert len(store.orders) == 1


async def test_another_request_with_a_used_key_is_refused(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await place_order(place_command(("p-tea", 2)), uow)

    with pytest.raises(IdempotencyKeyReused):
        await place_order(place_command(("p-tea", 3)), uow)
    assert len(store.orders) == 1


async def test_a_key_stored_meanwhile_by_a_concurrent_request_makes_this_one_a_replay(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    first = await place_order(place_command(("p-tea", 2)), uow)
    store.blind_key_lookups = 1

    again = await place_order(place_command(("p-tea", 2)), uow)

    assert (again.replayed, again.order.id) == (True, first.order.id)
    assert len(store.orders) == 1


async def test_cancelling_a_pending_order_cancels_it_at_once(uow: FakeUnitOfWork) -> None:
    placed = (await place_order(place_command(("p-tea", 2)), uow)).order

    order = await cancel_order(CancelOrder(placed.id, "c-1"), uow)

    assert (order.status, order.reason) == (OrderStatus.CANCELLED, "cancelled by the customer")
    assert (await get_order(uow, placed.id, "c-1")).status is OrderStatus.CANCELLED


async def test_cancelling_an_order_that_does_not_exist_is_refused(uow: FakeUnitOfWork) -> None:
    with pytest.raises(OrderNotFound):
        await cancel_order(CancelOrder("no-such-order", "c-1"), uow)


async def test_another_customers_order_is_not_found_and_cannot_be_cancelled(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    placed = (await place_order(place_command(("p-tea", 2)), uow)).order

    with pytest.raises(OrderNotFound):
        await get_order(uow, placed.id, "c-2")
    with pytest.raises(OrderNotFound):
        await cancel_order(CancelOrder(placed.id, "c-2"), uow)
    assert store.orders[placed.id].status is OrderStatus.PENDING


async def test_a_key_another_customer_used_does_not_answer_with_their_order(
    uow: FakeUnitOfWork,
) -> None:
    await place_order(place_command(("p-tea", 2), customer="c-1"), uow)
    command = place_command(("p-tea", 2), customer="c-2")
    # Even were the fingerprints alike, the key is another customer's.
    same_fingerprint = dataclasses.replace(
        command, request_fingerprint=place_command(("p-tea", 2)).request_fingerprint
    )

    with pytest.raises(IdempotencyKeyReused):
        await place_order(same_fingerprint, uow)


async def test_cancelling_a_rejected_order_is_refused(uow: FakeUnitOfWork) -> None:
    placed = (await place_order(place_command(("p-tea", 2)), uow)).order
    async with uow:
        order = await uow.orders.get(placed.id)
        assert order is not None
        order.refuse(Step.PRICE, "unknown product p-tea", order.created_at)
        await uow.orders.save(order)
        await uow.commit()

    with pytest.raises(OrderNotCancellable):
        await cancel_order(CancelOrder(placed.id, "c-1"), uow)


async def test_asking_for_an_unknown_order_raises_not_found(uow: FakeUnitOfWork) -> None:
    with pytest.raises(OrderNotFound):
        await get_order(uow, "no-such-order", "c-1")


async def test_a_customers_orders_are_listed_newest_first_a_page_at_a_time(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    ids = [
        (await place_order(place_command(("p-tea", n), key=f"k{n}"), uow)).order.id
        for n in range(1, 6)
    ]
    await place_order(place_command(("p-tea", 1), key="other", customer="c-2"), uow)

    first = await list_orders(uow, "c-1", page=1, page_size=2)
    last = await list_orders(uow, "c-1", page=3, page_size=2)

    assert [o.id for o in first.items] == [ids[4], ids[3]]
    assert [o.id for o in last.items] == [ids[0]]
    assert (first.total, first.pages) == (5, 3)


async def test_page_sizes_are_held_within_bounds(uow: FakeUnitOfWork) -> None:
    page = await list_orders(uow, "c-1", page=0, page_size=10_000)

    assert (page.page, page.page_size) == (1, MAX_PAGE_SIZE)
