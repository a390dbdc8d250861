"""The one place where the catalog's domain errors become HTTP problems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.domain.errors import (
    DuplicateSku,
    InvalidProduct,
    ProductNotFound,
    StaleProduct,
    UnknownCategory,
)
from chassis.problems import problem_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


async def catalog_problem(request: Request, error: Exception) -> Response:
    """Exception handler for CatalogError: answer it as problem+json."""
    path = request.url.path
    match error:
        case ProductNotFound():
            return problem_response(
                404,
                "product-not-found",
                "Product not found",
                str(error),
                instance=path,
                product_id=error.product_id,
            )
        case DuplicateSku():
            return problem_response(
                409, "duplicate-sku", "SKU already in use", str(error), instance=path, sku=error.sku
            )
        case StaleProduct():
            return problem_response(
                412,
                "stale-product",
                "Product has changed",
                f"{error}; fetch it again and retry with its new ETag",
                instance=path,
                product_id=error.product_id,
                current_version=error.actual_version,
            )
        case UnknownCategory():
            return problem_response(
                422,
                "unknown-category",
                "Unknown category",
                str(error),
                instance=path,
                category=error.slug,
            )
        case InvalidProduct():
            return problem_response(
                422,
                "invalid-product",
                "Invalid product",
                str(error),
                instance=path,
                field=error.field,
            )
        case _:
            # A new CatalogError without its own mapping is still the caller's problem, not a 500.
            return problem_response(
                400, "catalog-error", "Request refused", str(error), instance=path
            )
