"""The one place where the inventory's domain errors become HTTP problems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis.problems import problem_response, public_instance
from inventory.domain.errors import InvalidStockItem, UnknownSku

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


async def inventory_problem(request: Request, error: Exception) -> Response:
    """Exception handler for InventoryError: answer it as problem+json."""
    path = public_instance(request)
    match error:
        case UnknownSku():
            return problem_response(
                404, "unknown-sku", "Unknown SKU", str(error), instance=path, sku=error.sku
            )
        case InvalidStockItem():
            return problem_response(
                422,
                "invalid-stock-query",
                "Invalid stock query",
                str(error),
                instance=path,
                field=error.field,
            )
        case _:
            return problem_response(
                400, "inventory-error", "Request refused", str(error), instance=path
            )
