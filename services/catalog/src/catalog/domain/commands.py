"""What callers ask the catalog to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts import Money


@dataclass(frozen=True, slots=True)
class CreateProduct:
    sku: str
    name: str
    category: str
    price: Money
    description: str = ""


@dataclass(frozen=True, slots=True)
class UpdateProduct:
    """A partial revision: ``None`` leaves a field as it is.

    With ``expected_version`` the update only applies to that version of the product.
    """

    product_id: str
    name: str | None = None
    description: str | None = None
    category: str | None = None
    price: Money | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class ImportCatalog:
    """Add the products whose SKU the catalog does not have yet; existing ones are kept."""

    products: tuple[CreateProduct, ...]
