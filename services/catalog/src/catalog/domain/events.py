"""Facts about products, recorded on the aggregate for publishing later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts import Money


@dataclass(frozen=True, slots=True)
class ProductCreated:
    product_id: str
    sku: str
    name: str
    category: str
    price: Money


@dataclass(frozen=True, slots=True)
class ProductUpdated:
    """A revision; ``changed`` names the fields it touched, the rest is the new state."""

    product_id: str
    version: int
    changed: tuple[str, ...]
    name: str
    category: str
    price: Money


Event = ProductCreated | ProductUpdated
