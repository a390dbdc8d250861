"""Events of topic ``catalog``, keyed by product id: products as the catalog sells them.

Each event carries the product's whole public state and its ``version`` (1 when created, one
more for each revision), so a reader keeps the highest version it has seen and needs no
other order: a late or repeated event of an older version changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from contracts.events.schema import Event, register
from contracts.money import Money

TOPIC: Final = "catalog"


@dataclass(frozen=True, slots=True)
class ProductCreated(Event):
    """A product was added to the catalog (by an admin, or seeded with the demo catalog)."""

    event_type: ClassVar[str] = "ProductCreated"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "product_id"

    product_id: str
    sku: str
    name: str
    category: str
    price: Money
    version: int
    occurred_at: str


@dataclass(frozen=True, slots=True)
class ProductUpdated(Event):
    """A product was revised; ``changed`` names the fields that changed, the rest is as is."""

    event_type: ClassVar[str] = "ProductUpdated"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "product_id"

    product_id: str
    sku: str
    name: str
    category: str
    price: Money
    version: int
    changed: tuple[str, ...]
    occurred_at: str


register(ProductCreated, ProductUpdated)
