"""The order history (CQRS) through the gateway: orders, billing, inventory and catalog tell of
each order on the bus; order-history, which nobody else calls, assembles them; and
`souk replay order-history` rebuilds it from its archive into exactly the same answers.
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from .conftest import new_shopper
from .test_checkout import _in_stock, _place, _settled


def _subject(client: httpx.Client) -> str:
    """The customer id the client's access token names (its ``sub``)."""
    token = client.headers["Authorization"].removeprefix("Bearer ")
    claims = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["sub"])


def _history(shopper: httpx.Client) -> dict | None:
    """The shopper's own order history, or None while order-history cannot answer."""
    try:
        response = shopper.get(
            f"/api/order-history/customers/{_subject(shopper)}/orders",
            params={"page_size": 100},
        )
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _summary(order: dict) -> tuple:
    return (
        order["status"],
        (order["payment"] or {}).get("state"),
        (order["stock"] or {}).get("state"),
        tuple(item["name"] for item in order["items"]),
    )


def _replay(souk) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "souk", "replay", "order-history", "--data-dir", str(souk.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_history_shows_each_order_with_names_payment_and_stock_and_a_replay_keeps_it(
    souk, shopper
):
    teapot, kettle = _in_stock(souk, shopper, "ceramics", 2)
    confirmed = _settled(souk, shopper, _place(shopper, [(teapot, 2)]).json()["id"])
    declined = _settled(
        souk, shopper, _place(shopper, [(kettle, 1)], card="tok_decline").json()["id"]
    )
    assert (confirmed["status"], declined["status"]) == ("CONFIRMED", "REJECTED")
    expected = {
        confirmed["id"]: ("CONFIRMED", "CAPTURED", "COMMITTED", (teapot["name"],)),
        declined["id"]: ("REJECTED", "DECLINED", "RELEASED", (kettle["name"],)),
    }

    def assembled():
        history = _history(shopper)
        if history is None:
            return None
        found = {order["order_id"]: _summary(order) for order in history["items"]}
        return history if found == expected else None

    live = souk.wait_until(assembled, timeout=60, interval=0.2, message="the history assembled")

    [latest, earlier] = live["items"]
    assert (latest["order_id"], earlier["order_id"]) == (declined["id"], confirmed["id"])
    assert earlier["total"] == confirmed["total"]
    assert earlier["items"] == [
        {
            "product_id": teapot["id"],
            "sku": teapot["sku"],
            "name": teapot["name"],
            "quantity": 2,
            "unit_price": teapot["price"],
        }
    ]
    assert earlier["stock"]["lines"] == [{"sku": teapot["sku"], "quantity": 2}]
    assert latest["payment"]["reason"]

    replayed = _replay(souk)

    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("order-history rebuilt from ")
    assert _history(shopper) == live


def test_a_customers_history_is_theirs_alone(souk, shopper, gateway):
    [tea] = _in_stock(souk, shopper, "tea-coffee", 1)
    order_id = _settled(souk, shopper, _place(shopper, [(tea, 1)]).json()["id"])["id"]
    mine = f"/api/order-history/customers/{_subject(shopper)}/orders"
    souk.wait_until(
        lambda: any(
            o["order_id"] == order_id for o in (_history(shopper) or {"items": []})["items"]
        ),
        timeout=60,
        interval=0.2,
        message="the order in the history",
    )

    with new_shopper(souk) as stranger:
        assert stranger.get(mine).status_code == 404
        assert _history(stranger) == {
            "items": [],
            "page": 1,
            "page_size": 100,
            "total": 0,
            "pages": 0,
        }
    anonymous = gateway.get(mine)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    # The rebuild route is the operator's: the gateway never routes to it.
    assert shopper.post("/api/order-history/internal/rebuild").status_code == 404


def test_killing_order_history_mid_burst_loses_nothing_and_a_replay_still_agrees(souk, shopper):
    products = _in_stock(souk, shopper, "spices", 4)
    before = souk.instance("order-history-1")

    def order(n: int) -> str:
        placed = _place(shopper, [(products[n % len(products)], 1)])
        assert placed.status_code == 201, placed.text
        return placed.json()["id"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = list(pool.map(order, range(6)))
        killed = souk.kill("order-history-1", signal.SIGKILL)
        rest = list(pool.map(order, range(6, 12)))
    settled = [_settled(souk, shopper, order_id)["status"] for order_id in first + rest]
    assert set(settled) == {"CONFIRMED"}
    souk.wait_until(
        lambda: (
            souk.instance("order-history-1").state == "ready"
            and souk.instance("order-history-1").pid != killed
        ),
        timeout=30,
        message="order-history-1 restarted",
    )
    expected = dict.fromkeys(first + rest, ("CONFIRMED", "CAPTURED", "COMMITTED"))

    def complete():
        history = _history(shopper)
        if history is None:
            return None
        found = {o["order_id"]: _summary(o)[:3] for o in history["items"]}
        return history if found == expected else None

    live = souk.wait_until(complete, timeout=60, interval=0.2, message="every order in the history")

    assert souk.instance("order-history-1").restarts == before.restarts + 1
    assert live["total"] == len(expected)
    assert _replay(souk).returncode == 0
    assert _history(shopper) == live


def test_a_product_created_and_renamed_in_the_catalog_is_named_anew_in_the_history(
    souk, shopper, admin
):
    created = admin.post(
        "/api/catalog/products",
        json={
            "sku": f"LMP-E2E-{uuid.uuid4().hex[:8].upper()}",
            "name": "Brass lantern, 30 cm",
            "category": "lamps-lanterns",
            "price": {"amount": 4500, "currency": "EUR"},
        },
    )
    assert created.status_code == 201, created.text
    lantern = created.json()
    # Inventory stocks none of it: the order is rejected before it is priced, so its line is
    # named by the catalog's events alone.
    order_id = _settled(souk, shopper, _place(shopper, [(lantern, 1)]).json()["id"])["id"]

    def named(name):
        def check():
            history = _history(shopper)
            mine = [o for o in (history or {"items": []})["items"] if o["order_id"] == order_id]
            rejected = mine and mine[0]["status"] == "REJECTED"
            return rejected and mine[0]["items"][0]["name"] == name and mine[0]

        return check

    order = souk.wait_until(named("Brass lantern, 30 cm"), timeout=60, interval=0.2)
    assert order["items"][0]["unit_price"] is None
    renamed = admin.patch(
        f"/api/catalog/products/{lantern['id']}",
        json={"name": "Engraved brass lantern, 30 cm"},
        headers={"If-Match": created.headers["etag"]},
    )
    assert renamed.status_code == 200, renamed.text

    souk.wait_until(named("Engraved brass lantern, 30 cm"), timeout=60, interval=0.2)
