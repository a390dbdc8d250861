"""The demo catalog shipped with Souk: a small souk's worth of products, as data."""

from __future__ import annotations

import json
from importlib.resources import files

from catalog.domain.commands import CreateProduct, ImportCatalog
from contracts import Money


def load_demo_catalog() -> ImportCatalog:
    """The products of ``demo_catalog.json`` as one import command."""
    document = json.loads(
        files("catalog.adapters").joinpath("demo_catalog.json").read_text("utf-8")
    )
    currency = document["currency"]
    return ImportCatalog(
        products=tuple(
            CreateProduct(
                sku=item["sku"],
                name=item["name"],
                description=item["description"],
                category=item["category"],
                price=Money(item["price"], currency),
            )
            for item in document["products"]
        )
    )
