"""Checkouts left unfinished by an outage or a stop are finished later, without doing twice:
the step's command stays on the bus until its outcome is stored."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from orders.app import Upstreams
from services.orders.tests.conftest import TEA, bearer, unavailable
from services.orders.tests.integration.conftest import (
    order_body,
    orders_app,
    post_order,
    settled,
)

if TYPE_CHECKING:
    from orders.settings import OrdersSettings
    from services.orders.tests.conftest import FakeBilling, FakeInventory


def test_an_outage_outlasting_a_steps_retries_is_outlasted_by_its_command_coming_again(
    settings: OrdersSettings, upstreams: Upstreams, billing: FakeBilling
) -> None:
    billing.fail("capture", *(unavailable("billing") for _ in range(5)))
    with TestClient(orders_app(settings, upstreams), headers=bearer()) as client:
        order_id = post_order(client, order_body((TEA.product_id, 1))).json()["id"]
        order = settled(client, order_id)

    assert (order["status"], order["last_error"]) == ("CONFIRMED", None)
    assert ("capture-payment", "failed") in [
        (s["step"], s["outcome"]) for s in order["checkout_steps"]
    ]
    assert billing.count("capture") == 6
    assert len(billing.payments) == 1


def test_a_checkout_stopped_in_the_middle_of_a_step_is_resumed_at_the_next_start(
    settings: OrdersSettings, upstreams: Upstreams, inventory: FakeInventory
) -> None:
    async def hang() -> None:
        await asyncio.sleep(3600)

    inventory.during("reserve", hang)
    with TestClient(orders_app(settings, upstreams), headers=bearer()) as client:
        order_id = post_order(client, order_body((TEA.product_id, 2))).json()["id"]
        deadline = time.monotonic() + 10
        while inventory.count("reserve") == 0:
            assert time.monotonic() < deadline, "the checkout never reached the reserve step"
            time.sleep(0.01)
    with TestClient(orders_app(settings, upstreams), headers=bearer()) as client:
        order = settled(client, order_id)

    assert order["status"] == "CONFIRMED"
    assert inventory.count("reserve") == 2
    assert inventory.available[TEA.sku] == 3
