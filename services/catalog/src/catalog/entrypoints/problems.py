"""The one place where the catalog's domain errors become HTTP problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalog.domain.errors import (
    CatalogError,
    ConcurrentUpdate,
    DuplicateSku,
    InvalidProduct,
    ProductNotFound,
    StaleProduct,
    UnknownCategory,
)
from chassis.problems import problem_response, public_instance

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


@dataclass(frozen=True)
class _Problem:
    status: int
    type: str
    title: str
    hint: str = ""


# Most specific first: UnknownCategory is an InvalidProduct.
_PROBLEMS: dict[type[CatalogError], _Problem] = {
    ProductNotFound: _Problem(404, "product-not-found", "Product not found"),
    DuplicateSku: _Problem(409, "duplicate-sku", "SKU already in use"),
    ConcurrentUpdate: _Problem(
        409, "concurrent-update", "Product changed meanwhile", "; fetch it again and retry"
    ),
    StaleProduct: _Problem(
        412, "stale-product", "Product has changed", "; fetch it again and retry with its new ETag"
    ),
    UnknownCategory: _Problem(422, "unknown-category", "Unknown category"),
    InvalidProduct: _Problem(422, "invalid-product", "Invalid product"),
}
# A new CatalogError without its own row is still the caller's problem, not a 500.
_FALLBACK = _Problem(400, "catalog-error", "Request refused")


def _details(error: CatalogError) -> dict[str, Any]:
    match error:
        case ProductNotFound() | ConcurrentUpdate():
            return {"product_id": error.product_id}
        case DuplicateSku():
            return {"sku": error.sku}
        case StaleProduct():
            return {"product_id": error.product_id, "current_version": error.actual_version}
        case UnknownCategory():
            return {"category": error.slug}
        case InvalidProduct():
            return {"field": error.field}
    return {}


async def catalog_problem(request: Request, error: Exception) -> Response:
    """Exception handler for CatalogError: answer it as problem+json."""
    assert isinstance(error, CatalogError)  # noqa: S101 - registered for CatalogError only
    problem = next((p for kind, p in _PROBLEMS.items() if isinstance(error, kind)), _FALLBACK)
    return problem_response(
        problem.status,
        problem.type,
        problem.title,
        f"{error}{problem.hint}",
        instance=public_instance(request),
        **_details(error),
    )
