"""The Product aggregate and the Category it is filed under."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Final

from catalog.domain.errors import InvalidProduct, StaleProduct
from contracts import Money
from contracts.events import Event, ProductCreated, ProductUpdated, occurred_now

SKU_PATTERN: Final = r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$"
SKU_MAX_LENGTH: Final = 40
NAME_MAX_LENGTH: Final = 200
DESCRIPTION_MAX_LENGTH: Final = 2000
CATEGORY_SLUG_PATTERN: Final = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
CATEGORY_SLUG_MAX_LENGTH: Final = 50

# Fixed forever: ids are derived from SKUs so every replica and every restart agrees on them.
PRODUCT_ID_NAMESPACE: Final = uuid.UUID("5b0c6f4e-4a52-5c1e-9d6f-2f8f3c1a7e10")

_SKU = re.compile(SKU_PATTERN)
_CATEGORY_SLUG = re.compile(CATEGORY_SLUG_PATTERN)


def product_id_for(sku: str) -> str:
    """The product id that belongs to ``sku``: a UUID, the same everywhere."""
    return str(uuid.uuid5(PRODUCT_ID_NAMESPACE, sku))


@dataclass(frozen=True, slots=True)
class Category:
    """A shelf of the shop, addressed by its slug (``tea-coffee``) and shown by its name."""

    slug: str
    name: str


class Product:
    """Something Souk sells. Change it only through its methods, which keep it valid."""

    def __init__(
        self,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        sku: str,
        name: str,
        description: str,
        category: str,
        price: Money,
        version: int = 1,
    ) -> None:
        self.id = id
        self.sku = _checked_sku(sku)
        self.name = _checked_name(name)
        self.description = _checked_description(description)
        self.category = _checked_category(category)
        self.price = _checked_price(price)
        self.version = version
        self.events: list[Event] = []
        """What this product published since it was loaded, until its unit of work takes it."""

    @classmethod
    def create(
        cls, *, sku: str, name: str, category: str, price: Money, description: str = ""
    ) -> Product:
        """A new product at version 1, with its id derived from the SKU."""
        product = cls(
            id=product_id_for(sku),
            sku=sku,
            name=name,
            description=description,
            category=category,
            price=price,
        )
        product.events.append(
            ProductCreated(
                product_id=product.id,
                sku=product.sku,
                name=product.name,
                category=product.category,
                price=product.price,
                version=product.version,
                occurred_at=occurred_now(),
            )
        )
        return product

    def require_version(self, expected: int) -> None:
        """Refuse to go on unless this is the version the caller last saw."""
        if expected != self.version:
            raise StaleProduct(self.id, expected_version=expected, actual_version=self.version)

    def revise(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        category: str | None = None,
        price: Money | None = None,
    ) -> None:
        """Rename, describe, recategorise and/or reprice in one step; ``None`` keeps a field.

        Every field is checked before any is changed, so a rejected revision leaves the
        product as it was. A revision that changes something bumps the version once.
        """
        new_name = self.name if name is None else _checked_name(name)
        new_description = (
            self.description if description is None else _checked_description(description)
        )
        new_category = self.category if category is None else _checked_category(category)
        new_price = self.price if price is None else _checked_price(price)
        changed = tuple(
            field
            for field, old, new in (
                ("name", self.name, new_name),
                ("description", self.description, new_description),
                ("category", self.category, new_category),
                ("price", self.price, new_price),
            )
            if old != new
        )
        if not changed:
            return
        self.name = new_name
        self.description = new_description
        self.category = new_category
        self.price = new_price
        self.version += 1
        self.events.append(
            ProductUpdated(
                product_id=self.id,
                sku=self.sku,
                name=self.name,
                category=self.category,
                price=self.price,
                version=self.version,
                changed=changed,
                occurred_at=occurred_now(),
            )
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Product) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Product(id={self.id!r}, sku={self.sku!r}, version={self.version})"


def _checked_sku(sku: str) -> str:
    if not sku or len(sku) > SKU_MAX_LENGTH or not _SKU.match(sku):
        raise InvalidProduct(
            "sku",
            f"must be 1-{SKU_MAX_LENGTH} upper-case letters and digits in dash-separated "
            f"groups, such as SPC-SAFFRON-2G; got {sku!r}",
        )
    return sku


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidProduct("name", "must not be blank")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidProduct("name", f"must be at most {NAME_MAX_LENGTH} characters")
    return name


def _checked_description(description: str) -> str:
    description = description.strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise InvalidProduct("description", f"must be at most {DESCRIPTION_MAX_LENGTH} characters")
    return description


def _checked_category(slug: str) -> str:
    if len(slug) > CATEGORY_SLUG_MAX_LENGTH or not _CATEGORY_SLUG.match(slug):
        raise InvalidProduct(
            "category",
            "must be a slug of lower-case letters and digits in dash-separated groups, "
            f"such as tea-coffee; got {slug!r}",
        )
    return slug


def _checked_price(price: Money) -> Money:
    if price.is_negative:
        raise InvalidProduct("price", f"must not be negative; got {price.format()}")
    return price
