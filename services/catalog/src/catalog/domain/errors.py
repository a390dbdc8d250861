"""What can go wrong in the catalog, in the shop's words."""

from __future__ import annotations


class CatalogError(Exception):
    """A catalog rule was broken or a product could not be found."""


class ProductNotFound(CatalogError):
    """No product has this id."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"no product with id {product_id!r}")
        self.product_id = product_id


class DuplicateSku(CatalogError):
    """Another product already uses this SKU."""

    def __init__(self, sku: str) -> None:
        super().__init__(f"a product with SKU {sku!r} already exists")
        self.sku = sku


class InvalidProduct(CatalogError):
    """A product field breaks one of the catalog's invariants."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownCategory(InvalidProduct):
    """The category slug is well-formed but the shop has no such category."""

    def __init__(self, slug: str) -> None:
        super().__init__("category", f"no category with slug {slug!r}")
        self.slug = slug


class StaleProduct(CatalogError):
    """The product changed since the caller read it (optimistic concurrency)."""

    def __init__(
        self, product_id: str, *, expected_version: int | None, actual_version: int | None
    ) -> None:
        super().__init__(
            f"product {product_id!r} is at version {actual_version}, "
            f"not the expected {expected_version}"
            if expected_version is not None and actual_version is not None
            else f"product {product_id!r} was changed by someone else"
        )
        self.product_id = product_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class ConcurrentUpdate(CatalogError):
    """Another writer changed the product while this change was being applied."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"product {product_id!r} was changed by someone else meanwhile")
        self.product_id = product_id
