"""The composition root wires the real clients of catalog, inventory and billing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from orders.app import create_app
from services.orders.tests.conftest import bearer
from services.orders.tests.integration.conftest import (
    free_port,
    order_body,
    orders_app,
    post_order,
    stuck,
)

if TYPE_CHECKING:
    from orders.settings import OrdersSettings


def test_orders_without_the_address_of_an_upstream_does_not_start(
    settings: OrdersSettings,
) -> None:
    with (
        pytest.raises(LookupError, match="no address for upstream 'inventory'"),
        TestClient(create_app(settings)),
    ):
        pass


def test_with_every_upstream_down_an_order_waits_pending_with_the_reason(
    settings: OrdersSettings,
) -> None:
    down = settings.model_copy(
        update={
            "upstreams": {
                "catalog": [f"http://127.0.0.1:{free_port()}"],
                "inventory": [f"grpc://127.0.0.1:{free_port()}"],
                "billing": [f"http://127.0.0.1:{free_port()}"],
            }
        }
    )
    with TestClient(orders_app(down), headers=bearer()) as client:
        order_id = post_order(client, order_body(("p-1", 1))).json()["id"]
        order = stuck(client, order_id)

    assert order["status"] == "PENDING"
    assert order["last_error"].startswith("price: catalog: GET /products/p-1: ClientConnectorError")
