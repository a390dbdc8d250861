"""Events fan out to notifications, which nobody calls: a customer reads what they were told.

The orders, billing and inventory services publish through their outboxes; notifications
consumes through its inbox. Killing it mid-burst must lose no message and repeat none.
"""

from __future__ import annotations

import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import new_shopper
from .test_checkout import _in_stock, _place, _settled

CONFIRMED_STORY = {"OrderPlaced", "PaymentCaptured", "OrderConfirmed"}
DECLINED_STORY = {"OrderPlaced", "PaymentDeclined", "OrderRejected"}
OUT_OF_STOCK_STORY = {"OrderPlaced", "OrderRejected"}


def _story(order: dict) -> set[str]:
    """What a customer is told about a settled order."""
    if order["status"] == "CONFIRMED":
        return CONFIRMED_STORY
    return DECLINED_STORY if "declined" in order["reason"].lower() else OUT_OF_STOCK_STORY


def _notifications(shopper) -> list[dict] | None:
    """The notifications of the customer whose token ``shopper`` sends, or None while
    notifications cannot answer."""
    try:
        response = shopper.get("/api/notifications", params={"page_size": 100})
    except httpx.HTTPError:
        return None
    return response.json()["items"] if response.status_code == 200 else None


def _told(souk, shopper, expected: Counter) -> list[dict]:
    """Wait until the customer was told at least ``expected`` (order id, subject) pairs."""

    def complete():
        items = _notifications(shopper)
        if items is None:
            return None
        told = Counter((n["order_id"], n["subject"]) for n in items)
        return items if all(told[pair] >= count for pair, count in expected.items()) else None

    return souk.wait_until(complete, timeout=60, interval=0.2, message="the customer told all")


def test_a_customer_is_told_about_each_order_and_payment_once(souk, shopper):
    [teapot, kettle] = _in_stock(souk, shopper, "ceramics", 2)
    confirmed = _settled(souk, shopper, _place(shopper, [(teapot, 1)]).json()["id"])
    declined = _settled(
        souk, shopper, _place(shopper, [(kettle, 1)], card="tok_decline").json()["id"]
    )
    assert (confirmed["status"], declined["status"]) == ("CONFIRMED", "REJECTED")

    expected = Counter(
        [(confirmed["id"], s) for s in CONFIRMED_STORY]
        + [(declined["id"], s) for s in DECLINED_STORY]
    )
    items = _told(souk, shopper, expected)

    assert Counter((n["order_id"], n["subject"]) for n in items) == expected
    texts = {n["subject"]: n["text"] for n in items if n["order_id"] == confirmed["id"]}
    assert texts["OrderConfirmed"].startswith(f"Your order {confirmed['id']} is confirmed")
    assert "EUR" in texts["PaymentCaptured"]
    with new_shopper(souk) as nobody:
        assert _notifications(nobody) == []


def test_without_a_token_notifications_are_refused_401_with_a_bearer_challenge(gateway):
    response = gateway.get("/api/notifications", params={"customer": "anyone"})

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_killing_notifications_mid_burst_loses_no_message_and_repeats_none(souk, shopper):
    products = _in_stock(souk, shopper, "spices", 4)
    before = souk.instance("notifications-1")

    def order(n: int) -> str:
        placed = _place(shopper, [(products[n % len(products)], 1)])
        assert placed.status_code == 201, placed.text
        return placed.json()["id"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = list(pool.map(order, range(10)))
        killed = souk.kill("notifications-1", signal.SIGKILL)
        rest = list(pool.map(order, range(10, 20)))
    orders = [_settled(souk, shopper, order_id) for order_id in first + rest]
    souk.wait_until(
        lambda: (
            souk.instance("notifications-1").state == "ready"
            and souk.instance("notifications-1").pid != killed
        ),
        timeout=30,
        message="notifications-1 restarted",
    )

    expected = Counter((o["id"], subject) for o in orders for subject in _story(o))
    items = _told(souk, shopper, expected)

    assert souk.instance("notifications-1").restarts == before.restarts + 1
    assert Counter((n["order_id"], n["subject"]) for n in items) == expected, "lost or repeated"
    assert len({n["id"] for n in items}) == len(items)
