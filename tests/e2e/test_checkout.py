"""The three checkout stories through the gateway, checked by asking each service.

Each test orders as a customer of its own (the ``shopper`` fixture), signed in by the code
flow with PKCE; the last tests are the ones a customer could try against the access rules.
"""

from __future__ import annotations

import functools
import threading
import uuid

import httpx

from souk.testing import customer_token

from .conftest import ORDERS_CLIENT_ID, PASSWORD, bearer, new_shopper, service_token

TERMINAL = {"CONFIRMED", "REJECTED", "CANCELLED"}
# Billing and inventory check tokens themselves: reading them straight needs one that may.


def _products(gateway, category: str) -> list[dict]:
    response = gateway.get("/api/catalog/products", params={"category": category, "page_size": 50})
    return response.json()["items"]


def _in_stock(souk, gateway, category: str, count: int) -> list[dict]:
    """The first products of a category with at least 5 units available.

    Other tests of the session add products that inventory stocks none of: those are skipped.
    """
    stocked = [p for p in _products(gateway, category) if _available(souk, p["sku"]) >= 5]
    assert len(stocked) >= count, f"not enough stocked products in {category}"
    return stocked[:count]


@functools.cache
def _reader(souk) -> dict[str, str]:
    """Headers with a token that may read stock levels and payments (one per system)."""
    return bearer(service_token(souk, ORDERS_CLIENT_ID, ["stock:read", "payments:read"]))


def _stock_answer(souk, sku: str) -> httpx.Response:
    # Straight from inventory, as the operator's tools read it (its socket with the mesh on).
    inventory = souk.url("inventory")
    with souk.http(timeout=5) as client:
        return client.get(f"{inventory}/stock/{sku}", headers=_reader(souk))


def _stock(souk, sku: str) -> dict:
    answer = _stock_answer(souk, sku)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _available(souk, sku: str) -> int:
    """Units inventory can sell; 0 for a SKU it has never stocked (404)."""
    answer = _stock_answer(souk, sku)
    if answer.status_code == 404:
        return 0
    assert answer.status_code == 200, answer.text
    return int(answer.json()["available"])


def _payments(souk, order_id: str) -> list[dict]:
    billing = souk.url("billing")
    with souk.http(timeout=5) as client:
        response = client.get(
            f"{billing}/payments", params={"order_id": order_id}, headers=_reader(souk)
        )
    return response.json()


def _place(shopper, items, *, card="tok_ok", key=None) -> httpx.Response:
    """Place an order as the customer whose token ``shopper`` sends."""
    return shopper.post(
        "/api/orders",
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
        json={
            "items": [{"product_id": p["id"], "quantity": q} for p, q in items],
            "payment": {"card_token": card},
        },
    )


def _settled(souk, shopper, order_id: str) -> dict:
    """The order once it is terminal *and* its saga has nothing left to do: a rejected
    order's compensations (the stock's release) run after it reads REJECTED."""

    def terminal():
        order = shopper.get(f"/api/orders/{order_id}").json()
        return order if order["status"] in TERMINAL and order["saga"]["settled"] else None

    return souk.wait_until(terminal, timeout=30, interval=0.1, message=f"order {order_id} settled")


def test_an_order_in_stock_is_confirmed_with_stock_taken_and_payment_captured(souk, shopper):
    saffron, cumin = _in_stock(souk, shopper, "spices", 2)
    before = {p["sku"]: _stock(souk, p["sku"]) for p in (saffron, cumin)}

    placed = _place(shopper, [(saffron, 2), (cumin, 1)])
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "PENDING"
    order = _settled(souk, shopper, placed.json()["id"])

    assert order["status"] == "CONFIRMED", order
    expected = saffron["price"]["amount"] * 2 + cumin["price"]["amount"]
    assert order["total"] == {"amount": expected, "currency": "EUR"}
    after = {p["sku"]: _stock(souk, p["sku"]) for p in (saffron, cumin)}
    assert after[saffron["sku"]]["on_hand"] == before[saffron["sku"]]["on_hand"] - 2
    assert after[cumin["sku"]]["on_hand"] == before[cumin["sku"]]["on_hand"] - 1
    assert after[saffron["sku"]]["reserved"] == before[saffron["sku"]]["reserved"]
    [payment] = _payments(souk, order["id"])
    assert payment["status"] == "CAPTURED"
    assert payment["amount"] == order["total"]


def test_an_order_beyond_the_stock_is_rejected_with_a_reason_and_nothing_charged(souk, shopper):
    lantern = _products(shopper, "lamps-lanterns")[0]
    available = _stock(souk, lantern["sku"])["available"]

    placed = _place(shopper, [(lantern, available + 1)])
    assert placed.status_code == 201, placed.text
    order = _settled(souk, shopper, placed.json()["id"])

    assert order["status"] == "REJECTED"
    assert "out of stock" in order["reason"].lower()
    assert lantern["sku"] in order["reason"]
    assert _stock(souk, lantern["sku"])["available"] == available
    assert _payments(souk, order["id"]) == []


def test_a_declined_card_rejects_the_order_and_puts_the_stock_back(souk, shopper):
    [teapot] = _in_stock(souk, shopper, "ceramics", 1)
    before = _stock(souk, teapot["sku"])

    placed = _place(shopper, [(teapot, 1)], card="tok_decline")
    order = _settled(souk, shopper, placed.json()["id"])

    assert order["status"] == "REJECTED"
    assert "declined" in order["reason"].lower()
    after = _stock(souk, teapot["sku"])
    assert (after["on_hand"], after["reserved"]) == (before["on_hand"], before["reserved"])
    assert [p["status"] for p in _payments(souk, order["id"])] == ["DECLINED"]


def test_repeating_a_request_with_its_idempotency_key_never_orders_or_charges_twice(souk, shopper):
    [rug] = _in_stock(souk, shopper, "textiles", 1)
    before = _stock(souk, rug["sku"])
    key = str(uuid.uuid4())

    first = _place(shopper, [(rug, 1)], key=key)
    second = _place(shopper, [(rug, 1)], key=key)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    order = _settled(souk, shopper, first.json()["id"])
    third = _place(shopper, [(rug, 1)], key=key)
    assert third.status_code == 200
    assert third.json()["id"] == order["id"]

    assert order["status"] == "CONFIRMED"
    assert len(_payments(souk, order["id"])) == 1
    assert _stock(souk, rug["sku"])["on_hand"] == before["on_hand"] - 1


def test_concurrent_retries_with_one_idempotency_key_make_one_order(souk, shopper):
    [soap] = _in_stock(souk, shopper, "soaps-cosmetics", 1)
    key = str(uuid.uuid4())
    answers: list[httpx.Response] = []
    authorization = shopper.headers["Authorization"]

    def place() -> None:
        with httpx.Client(
            base_url=souk.gateway_url, timeout=10, headers={"Authorization": authorization}
        ) as client:
            answers.append(_place(client, [(soap, 1)], key=key))

    threads = [threading.Thread(target=place) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ids = {a.json().get("id") for a in answers if a.status_code in (200, 201)}
    assert len(ids) == 1, [(a.status_code, a.text) for a in answers]
    assert sorted(a.status_code for a in answers).count(201) == 1
    order = _settled(souk, shopper, ids.pop())
    assert len(_payments(souk, order["id"])) == 1


def test_a_reused_key_with_another_body_is_refused(souk, shopper):
    lamp, bowl = _in_stock(souk, shopper, "lamps-lanterns", 2)
    key = str(uuid.uuid4())
    assert _place(shopper, [(lamp, 1)], key=key).status_code == 201
    reused = _place(shopper, [(bowl, 1)], key=key)
    assert reused.status_code == 422
    assert reused.json()["type"] == "https://souk.dev/problems/idempotency-key-reused"


def test_without_a_token_orders_are_refused_401_with_a_bearer_challenge(gateway):
    for response in (
        gateway.get("/api/orders"),
        gateway.get(f"/api/orders/{uuid.uuid4()}"),
        gateway.post("/api/orders", headers={"Idempotency-Key": str(uuid.uuid4())}, json={}),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"


def test_an_order_is_placed_for_the_customer_the_token_names(souk, shopper):
    [lamp] = _in_stock(souk, shopper, "lamps-lanterns", 1)

    placed = _place(shopper, [(lamp, 1)])
    named = shopper.post(
        "/api/orders",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "customer_id": "someone-else",
            "items": [{"product_id": lamp["id"], "quantity": 1}],
            "payment": {"card_token": "tok_ok"},
        },
    )

    assert placed.status_code == 201, placed.text
    assert named.status_code == 422, named.text
    [listed] = shopper.get("/api/orders").json()["items"]
    assert listed["id"] == placed.json()["id"]
    assert listed["customer_id"] == placed.json()["customer_id"] != "someone-else"


def test_a_customer_cannot_read_or_cancel_another_customers_order(souk, shopper):
    [lamp] = _in_stock(souk, shopper, "lamps-lanterns", 1)
    order_id = _place(shopper, [(lamp, 1)]).json()["id"]

    with new_shopper(souk) as stranger:
        read = stranger.get(f"/api/orders/{order_id}")
        cancelled = stranger.post(f"/api/orders/{order_id}/cancel")
        listed = stranger.get("/api/orders").json()

    assert read.status_code == 404, read.text
    assert read.json()["type"] == "https://souk.dev/problems/order-not-found"
    assert cancelled.status_code == 404, cancelled.text
    assert listed["total"] == 0
    assert shopper.get(f"/api/orders/{order_id}").status_code == 200


def test_a_token_without_orders_write_cannot_place_an_order(souk, gateway):
    [lamp] = _in_stock(souk, gateway, "lamps-lanterns", 1)
    # A customer's token that may read orders but not place them (a script's own token is no
    # customer's at all: test_security.py).
    email = f"reader-{uuid.uuid4().hex[:12]}@example.com"
    reader = customer_token(souk.gateway_url, email, PASSWORD, scopes=["orders:read"])

    response = gateway.post(
        "/api/orders",
        headers={"Idempotency-Key": str(uuid.uuid4()), **bearer(reader)},
        json={
            "items": [{"product_id": lamp["id"], "quantity": 1}],
            "payment": {"card_token": "tok_ok"},
        },
    )

    assert response.status_code == 403, response.text
    assert "insufficient_scope" in response.headers["www-authenticate"]
    assert gateway.get("/api/orders", headers=bearer(reader)).status_code == 200
