"""The order history (CQRS) through the gateway: orders, billing, inventory and catalog tell of
each order on the bus; order-history, which nobody else calls, assembles them; and
`souk replay order-history` rebuilds it from its archive into exactly the same answers.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

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
