"""The orders HTTP API on real SQLite, with the checkout running in the background."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from chassis.testing import readable_client_bearer
from orders.entrypoints.cursors import cursor_of
from orders.service_layer.ports import ListPosition, NoUsableAnswer
from services.orders.tests.conftest import DECLINED_CARD, SAFFRON, TEA, bearer, unavailable
from services.orders.tests.integration.conftest import (
    order_body,
    post_order,
    problem_of,
    settled,
    stuck,
)

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from orders.settings import OrdersSettings
    from services.orders.tests.conftest import FakeBilling, FakeInventory


def test_an_order_is_answered_201_pending_and_then_confirmed_in_the_background(
    client: TestClient,
) -> None:
    response = post_order(client, order_body((SAFFRON.product_id, 2)))

    assert response.status_code == 201, response.text
    placed = response.json()
    assert placed["status"] == "PENDING"
    assert response.headers["location"] == f"/orders/{placed['id']}"
    assert settled(client, placed["id"])["status"] == "CONFIRMED"


def test_behind_the_gateway_the_location_is_the_public_path_not_this_instances_address(
    client: TestClient,
) -> None:
    # The gateway serves /api/orders as /orders here and says so in X-Forwarded-Prefix.
    headers = {"Idempotency-Key": str(uuid.uuid4()), "X-Forwarded-Prefix": "/api"}

    response = client.post("/orders", json=order_body((TEA.product_id, 1)), headers=headers)

    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/orders/{response.json()['id']}"


def test_a_confirmed_order_shows_its_priced_lines_total_and_checkout_steps(
    client: TestClient,
) -> None:
    placed = post_order(client, order_body((SAFFRON.product_id, 2), (TEA.product_id, 1))).json()

    order = settled(client, placed["id"])

    assert order["items"] == [
        {
            "product_id": SAFFRON.product_id,
            "sku": "SPC-SAFFRON-2G",
            "name": "Taliouine saffron threads, 2 g",
            "unit_price": {"amount": 1490, "currency": "EUR"},
            "quantity": 2,
            "line_total": {"amount": 2980, "currency": "EUR"},
        },
        {
            "product_id": TEA.product_id,
            "sku": "TEA-GUNPOWDER-250G",
            "name": "Gunpowder green tea, 250 g",
            "unit_price": {"amount": 850, "currency": "EUR"},
            "quantity": 1,
            "line_total": {"amount": 850, "currency": "EUR"},
        },
    ]
    assert order["total"] == {"amount": 3830, "currency": "EUR"}
    assert [(s["step"], s["outcome"]) for s in order["checkout_steps"]] == [
        ("price", "done"),
        ("reserve-stock", "done"),
        ("authorize-payment", "done"),
        ("capture-payment", "done"),
        ("commit-stock", "done"),
    ]
    assert order["saga"] == {"settled": True, "step_in_progress": None, "step_deadline": None}
    assert order["reason"] is order["last_error"] is None
    assert order["payment_id"]
    assert "card_token" not in order


def test_the_same_request_with_the_same_key_is_answered_200_with_the_same_order(
    client: TestClient,
) -> None:
    key = str(uuid.uuid4())
    first = post_order(client, order_body((TEA.product_id, 1)), key)
    # The same content in another order of keys is the same request.
    body = order_body((TEA.product_id, 1))
    again = post_order(client, dict(reversed(body.items())), key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert client.get("/orders").json()["total"] == 1


def test_the_same_key_with_another_request_is_refused(client: TestClient) -> None:
    key = str(uuid.uuid4())
    post_order(client, order_body((TEA.product_id, 1)), key)

    response = post_order(client, order_body((TEA.product_id, 2)), key)

    problem_of(response, 422, "idempotency-key-reused")


def test_an_order_without_an_idempotency_key_is_refused_before_its_body_is_read(
    client: TestClient,
) -> None:
    missing = client.post("/orders", json={"items": []})
    body = order_body((TEA.product_id, 1))
    blank = client.post("/orders", json=body, headers={"Idempotency-Key": " "})
    odd = client.post("/orders", json=body, headers={"Idempotency-Key": "a b"})

    problem_of(missing, 400, "idempotency-key-required")
    problem_of(blank, 400, "idempotency-key-required")
    problem_of(odd, 400, "idempotency-key-invalid")


@pytest.mark.parametrize(
    "body",
    [
        {"items": [], "payment": {"card_token": "tok_ok"}},
        order_body((TEA.product_id, 0)),
        order_body((TEA.product_id, 101)),
        order_body((TEA.product_id, 1.5)),  # type: ignore[arg-type]
        {"items": [{"product_id": TEA.product_id, "quantity": 1}]},
        {**order_body((TEA.product_id, 1)), "coupon": "FREE"},
        {**order_body((TEA.product_id, 1)), "customer_id": "c-2"},
    ],
    ids=[
        "no items",
        "quantity 0",
        "quantity 101",
        "fractional quantity",
        "no payment",
        "unknown field",
        "a customer named in the body",
    ],
)
def test_a_malformed_order_is_refused_with_422(client: TestClient, body: dict[str, Any]) -> None:
    problem_of(post_order(client, body), 422, "validation-error")


def test_items_naming_one_product_are_merged_into_one_line(client: TestClient) -> None:
    response = post_order(client, order_body((TEA.product_id, 1), (TEA.product_id, 2)))

    assert [(i["product_id"], i["quantity"]) for i in response.json()["items"]] == [
        (TEA.product_id, 3)
    ]


def test_items_naming_one_product_may_not_add_up_to_more_than_one_hundred(
    client: TestClient,
) -> None:
    response = post_order(client, order_body((TEA.product_id, 60), (TEA.product_id, 41)))

    assert problem_of(response, 422, "invalid-order")["field"] == "quantity"


def test_an_unknown_order_is_not_found(client: TestClient) -> None:
    problem_of(client.get("/orders/no-such-order"), 404, "order-not-found")
    problem_of(client.post("/orders/no-such-order/cancel"), 404, "order-not-found")


def test_an_order_out_of_stock_is_rejected_with_the_reason(client: TestClient) -> None:
    placed = post_order(client, order_body((SAFFRON.product_id, 11))).json()

    order = settled(client, placed["id"])

    assert order["status"] == "REJECTED"
    assert order["reason"] == "out of stock: SPC-SAFFRON-2G (10 available)"


def test_a_declined_card_rejects_the_order_and_shows_the_stock_released(
    client: TestClient, inventory: FakeInventory
) -> None:
    placed = post_order(
        client, order_body((SAFFRON.product_id, 1), card_token=DECLINED_CARD)
    ).json()

    order = settled(client, placed["id"])

    assert order["status"] == "REJECTED"
    assert order["reason"] == "payment declined: insufficient funds"
    assert order["checkout_steps"][-1]["step"] == "release-stock"
    assert inventory.available[SAFFRON.sku] == 10


def test_an_order_stuck_on_an_unavailable_service_stays_pending_with_its_last_error(
    client: TestClient, billing: FakeBilling
) -> None:
    billing.fail("authorize", *(unavailable("billing") for _ in range(1000)))
    placed = post_order(client, order_body((TEA.product_id, 1))).json()

    order = stuck(client, placed["id"])

    assert order["status"] == "PENDING"
    assert order["last_error"] == "authorize-payment: billing: connection refused"
    saga = order["saga"]
    assert (saga["settled"], saga["step_in_progress"]) == (False, "authorize-payment")
    began = datetime.fromisoformat(order["checkout_steps"][-2]["at"])
    assert datetime.fromisoformat(saga["step_deadline"]) >= began + timedelta(seconds=60)


def test_the_callers_own_orders_are_listed_newest_first(client: TestClient) -> None:
    ids = [post_order(client, order_body((TEA.product_id, n))).json()["id"] for n in (1, 2, 3)]
    post_order(client, order_body((TEA.product_id, 1)), auth=bearer("c-2"))

    page = client.get("/orders", params={"page_size": 2}).json()

    assert [o["id"] for o in page["items"]] == [ids[2], ids[1]]
    assert (page["total"], page["pages"]) == (3, 2)


def test_an_order_is_placed_for_the_tokens_subject(client: TestClient) -> None:
    placed = post_order(client, order_body((TEA.product_id, 1)), auth=bearer("c-9")).json()

    assert placed["customer_id"] == "c-9"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/orders"),
        ("GET", "/orders"),
        ("GET", "/orders/o-1"),
        ("POST", "/orders/o-1/cancel"),
    ],
)
def test_every_order_route_without_a_token_is_answered_401_with_a_bearer_challenge(
    client: TestClient, method: str, path: str
) -> None:
    del client.headers["Authorization"]

    response = client.request(method, path, headers={"Idempotency-Key": str(uuid.uuid4())})

    problem_of(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_token_the_validator_refuses_is_answered_401_invalid_token(client: TestClient) -> None:
    response = client.get("/orders", headers={"Authorization": "Bearer forged"})

    problem_of(response, 401, "invalid-token")
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


def test_a_token_without_orders_write_cannot_place_or_cancel_an_order(
    client: TestClient,
) -> None:
    reader = bearer("c-1", "orders:read")
    placed = post_order(client, order_body((TEA.product_id, 1))).json()

    placing = post_order(client, order_body((TEA.product_id, 1)), auth=reader)
    cancelling = client.post(f"/orders/{placed['id']}/cancel", headers=reader)

    assert problem_of(placing, 403, "insufficient-scope")["required_scopes"] == ["orders:write"]
    problem_of(cancelling, 403, "insufficient-scope")
    assert client.get("/orders").json()["total"] == 1


def test_a_token_without_orders_read_cannot_read_orders(client: TestClient) -> None:
    writer = bearer("c-1", "orders:write")

    problem_of(client.get("/orders", headers=writer), 403, "insufficient-scope")


def test_a_clients_own_token_places_reads_and_cancels_no_order(client: TestClient) -> None:
    # Called directly, not through the gateway (which refuses it too): zero trust. The
    # client's token holds the scopes; it is still no customer's.
    token = readable_client_bearer("bff-web", "orders:read", "orders:write")
    placed = post_order(client, order_body((TEA.product_id, 1))).json()

    placing = post_order(client, order_body((TEA.product_id, 1)), auth=token)
    listing = client.get("/orders", headers=token)
    cancelling = client.post(f"/orders/{placed['id']}/cancel", headers=token)

    for refused in (placing, listing, cancelling):
        problem_of(refused, 403, "customer-required")
    assert client.get("/orders").json()["total"] == 1


def test_another_customers_order_is_not_found_and_cannot_be_cancelled(
    client: TestClient,
) -> None:
    placed = post_order(client, order_body((TEA.product_id, 1))).json()
    other = bearer("c-2")

    problem_of(client.get(f"/orders/{placed['id']}", headers=other), 404, "order-not-found")
    cancelling = client.post(f"/orders/{placed['id']}/cancel", headers=other)
    problem_of(cancelling, 404, "order-not-found")
    assert client.get("/orders", headers=other).json()["total"] == 0
    assert client.get(f"/orders/{placed['id']}").json()["status"] != "CANCELLED"


def test_another_customers_idempotency_key_does_not_answer_with_their_order(
    client: TestClient,
) -> None:
    key = str(uuid.uuid4())
    post_order(client, order_body((TEA.product_id, 1)), key)

    response = post_order(client, order_body((TEA.product_id, 1)), key, auth=bearer("c-2"))

    problem_of(response, 422, "idempotency-key-reused")


def test_cancelling_a_confirmed_order_refunds_its_payment(
    client: TestClient, billing: FakeBilling
) -> None:
    placed = post_order(client, order_body((TEA.product_id, 1))).json()
    settled(client, placed["id"])

    response = client.post(f"/orders/{placed['id']}/cancel")
    order = settled(client, placed["id"])

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert order["checkout_steps"][-1]["step"] == "refund-payment"
    payment = billing.payment_of(placed["id"])
    assert payment is not None
    assert payment.status == "REFUNDED"


def test_cancelling_a_rejected_order_is_refused(client: TestClient) -> None:
    placed = post_order(client, order_body((SAFFRON.product_id, 11))).json()
    settled(client, placed["id"])

    response = client.post(f"/orders/{placed['id']}/cancel")

    assert problem_of(response, 409, "order-not-cancellable")["order_status"] == "REJECTED"


def test_an_order_unchanged_since_it_was_fetched_is_answered_304(client: TestClient) -> None:
    placed = post_order(client, order_body((TEA.product_id, 1))).json()
    settled(client, placed["id"])
    etag = client.get(f"/orders/{placed['id']}").headers["etag"]

    response = client.get(f"/orders/{placed['id']}", headers={"If-None-Match": etag})

    assert response.status_code == 304


def test_a_walk_by_cursor_meets_every_order_once_while_new_ones_are_placed(
    client: TestClient,
) -> None:
    before_walk = [
        post_order(client, order_body((TEA.product_id, n))).json()["id"] for n in (1, 2, 3)
    ]

    first = client.get("/orders", params={"page_size": 2}).json()
    placed_meanwhile = post_order(client, order_body((TEA.product_id, 4))).json()["id"]
    second = client.get("/orders", params={"page_size": 2, "before": first["next_before"]}).json()

    assert [o["id"] for o in first["items"] + second["items"]] == before_walk[::-1]
    assert second["next_before"] is None
    assert placed_meanwhile not in [o["id"] for o in second["items"]]
    assert client.get("/orders").json()["next_before"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "WyJ5ZXN0ZXJkYXkiLCJvLTEiXQ",
        "WyIyMDI2LTExLTI1VDEwOjAwOjAwIiwiby0xIl0",
        # Valid ISO times no UTC datetime can hold: they were a 500 (date value out of range).
        cursor_of(ListPosition(datetime.min.replace(tzinfo=timezone(timedelta(hours=1))), "o")),
        cursor_of(ListPosition(datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))), "o")),
    ],
)
def test_a_cursor_this_listing_did_not_give_is_a_400_invalid_cursor(
    client: TestClient, cursor: str
) -> None:
    problem_of(client.get("/orders", params={"before": cursor}), 400, "invalid-cursor")


def test_a_stuck_orders_error_shows_no_internal_address(
    client: TestClient, billing: FakeBilling
) -> None:
    refused = NoUsableAnswer(
        "billing: POST /payments: Cannot connect to host 127.0.0.1:43211 ssl:default "
        "(http://127.0.0.1:43211/payments, ipv4:10.1.2.3:50051, localhost:8003)",
        transient=True,
    )
    billing.fail("authorize", *(refused for _ in range(1000)))
    placed = post_order(client, order_body((TEA.product_id, 1))).json()

    order = stuck(client, placed["id"])

    shown = [order["last_error"], *(step["detail"] for step in order["checkout_steps"])]
    assert order["last_error"].startswith("authorize-payment: billing: POST /payments: Cannot")
    for text in shown:
        for address in ("127.0.0.1", "43211", "10.1.2.3", "localhost", "http://"):
            assert address not in text, text


DELIVERY = {
    "name": "Amina Benali",
    "address": "12 Derb Sidi Ahmed",
    "postcode": "30110",
    "city": "Fes",
    "country": "MA",
    "option": "express",
}


def test_an_order_carries_its_delivery_and_a_1_0_client_places_one_without(
    client: TestClient,
) -> None:
    with_delivery = post_order(client, {**order_body((TEA.product_id, 1)), "delivery": DELIVERY})
    without = post_order(client, order_body((TEA.product_id, 1)))

    assert with_delivery.status_code == without.status_code == 201
    # API 1.2: the delivery carries its price (express: 9.90 EUR by default).
    express = {"amount": 990, "currency": "EUR"}
    assert with_delivery.json()["delivery"] == {**DELIVERY, "price": express}
    assert without.json()["delivery"] is None
    stored = client.get(f"/orders/{with_delivery.json()['id']}").json()
    assert stored["delivery"] == {**DELIVERY, "price": express}


def test_the_delivery_price_is_in_the_total_the_payment_takes(
    client: TestClient, billing: FakeBilling
) -> None:
    placed = post_order(client, {**order_body((TEA.product_id, 1)), "delivery": DELIVERY}).json()
    standard = post_order(
        client,
        {**order_body((TEA.product_id, 1)), "delivery": {**DELIVERY, "option": "standard"}},
    ).json()
    without = post_order(client, order_body((TEA.product_id, 1))).json()

    express, free, bare = (settled(client, o["id"]) for o in (placed, standard, without))

    assert express["status"] == free["status"] == bare["status"] == "CONFIRMED"
    assert express["total"] == {"amount": 850 + 990, "currency": "EUR"}
    assert free["delivery"]["price"] == {"amount": 0, "currency": "EUR"}
    assert free["total"] == bare["total"] == {"amount": 850, "currency": "EUR"}
    payment = billing.payment_of(express["id"])
    assert payment is not None
    assert (payment.amount.amount, payment.status) == (850 + 990, "CAPTURED")


def test_the_delivery_options_and_their_prices_are_listed(client: TestClient) -> None:
    answer = client.get("/orders/delivery-options")

    assert answer.status_code == 200
    assert answer.json() == {
        "options": [
            {"option": "standard", "price": {"amount": 0, "currency": "EUR"}},
            {"option": "express", "price": {"amount": 990, "currency": "EUR"}},
        ]
    }
    again = client.get(
        "/orders/delivery-options", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304
    assert client.get("/orders/delivery-options", headers={"Authorization": ""}).status_code == 401


def test_the_same_delivered_request_again_is_a_replay_at_the_price_it_was_placed_at(
    client: TestClient, settings: OrdersSettings
) -> None:
    body = {**order_body((TEA.product_id, 1)), "delivery": DELIVERY}
    key = str(uuid.uuid4())
    first = post_order(client, body, key=key)
    settings.delivery_prices["express"] = 1490  # the shop's price changes (settings are frozen)
    again = post_order(client, body, key=key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["delivery"]["price"] == {"amount": 990, "currency": "EUR"}
    # A new order is placed at the new price.
    fresh = post_order(client, body)
    assert fresh.json()["delivery"]["price"] == {"amount": 1490, "currency": "EUR"}


@pytest.mark.parametrize(
    "change",
    [{"option": "teleport"}, {"country": "Morocco"}, {"city": ""}, {"floor": "3"}],
)
def test_an_invalid_delivery_is_a_422_problem(client: TestClient, change: dict[str, str]) -> None:
    body = {**order_body((TEA.product_id, 1)), "delivery": {**DELIVERY, **change}}

    problem_of(post_order(client, body), 422, "validation-error")
