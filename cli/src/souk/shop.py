"""The shop as a client sees it: products with stock, and the body of an order for one.

Shared by the tools that place orders themselves: `souk chaos` and bench/checkout.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

# Identity's default client of the orders service: it may read stock levels and payments.
ORDERS_CLIENT = "orders"
CARD_OK = "tok_ok"  # the payment simulators' card that is always authorized


@dataclass(frozen=True)
class Product:
    id: str
    sku: str
    available: int


async def in_stock(
    client: httpx.AsyncClient, gateway: str, inventory: str, token: str
) -> list[Product]:
    """The catalog's products that have stock available (``token``: one with stock:read)."""
    answer = await client.get(f"{gateway}/api/catalog/products", params={"page_size": 100})
    answer.raise_for_status()
    ids = {product["sku"]: product["id"] for product in answer.json()["items"]}
    # A service's token comes from identity directly, never through the public edge.
    levels = await client.get(
        f"{inventory}/stock",
        params={"skus": ",".join(ids)},
        headers={"Authorization": f"Bearer {token}"},
    )
    levels.raise_for_status()
    return [
        Product(ids[level["sku"]], level["sku"], level["available"])
        for level in levels.json()
        if level["available"] > 0
    ]


def order_body(product_id: str, quantity: int = 1) -> dict[str, Any]:
    """POST /api/orders's body: ``quantity`` of one product, paid with a card that works."""
    return {
        "items": [{"product_id": product_id, "quantity": quantity}],
        "payment": {"card_token": CARD_OK},
    }
