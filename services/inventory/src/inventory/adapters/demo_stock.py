"""The demo stock shipped with Souk: units on hand for each SKU of the demo catalog."""

from __future__ import annotations

import json
from importlib.resources import files

from inventory.domain.commands import ImportStock, StockCount


def load_demo_stock() -> ImportStock:
    """The counts of ``demo_stock.json`` as one import command."""
    document = json.loads(
        files("inventory.adapters").joinpath("demo_stock.json").read_text("utf-8")
    )
    return ImportStock(
        counts=tuple(
            StockCount(sku=item["sku"], on_hand=item["on_hand"]) for item in document["stock"]
        )
    )
