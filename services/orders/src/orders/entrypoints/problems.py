"""The one place where the orders' domain errors become HTTP problems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis.problems import problem_response, public_instance
from orders.domain.errors import (
    IdempotencyKeyReused,
    InvalidOrder,
    OrderNotCancellable,
    OrderNotFound,
    StaleOrder,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


async def orders_problem(request: Request, error: Exception) -> Response:
    """Exception handler for OrdersError: answer it as problem+json."""
    # The path the client asked for: behind the gateway /api/orders/..., not /orders/...
    path = public_instance(request)
    match error:
        case OrderNotFound():
            return problem_response(
                404,
                "order-not-found",
                "Order not found",
                str(error),
                instance=path,
                order_id=error.order_id,
            )
        case InvalidOrder():
            return problem_response(
                422, "invalid-order", "Invalid order", str(error), instance=path, field=error.field
            )
        case IdempotencyKeyReused():
            return problem_response(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                str(error),
                instance=path,
            )
        case OrderNotCancellable():
            return problem_response(
                409,
                "order-not-cancellable",
                "Order cannot be cancelled",
                str(error),
                instance=path,
                order_status=error.status,
            )
        case StaleOrder():
            return problem_response(
                409,
                "order-changed",
                "Order is changing",
                f"{error}; the checkout is busy with it, try again in a moment",
                instance=path,
            )
        case _:
            # A new OrdersError without its own mapping is still the caller's problem, not a 500.
            return problem_response(
                400, "orders-error", "Request refused", str(error), instance=path
            )
