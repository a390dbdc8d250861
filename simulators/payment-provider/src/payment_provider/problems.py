"""The one place where the processor's refusals become HTTP problems."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chassis.problems import problem_response
from payment_provider.processor import (
    AuthorizationNotFound,
    AuthorizationStateConflict,
    CardDeclined,
    IdempotencyKeyReused,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


async def processor_problem(request: Request, error: Exception) -> Response:
    """Exception handler for ProcessorError: answer it as problem+json."""
    path = request.url.path
    match error:
        case CardDeclined():
            return problem_response(
                402,
                "card-declined",
                "Card declined",
                str(error),
                instance=path,
                decline_reason=error.reason,
            )
        case AuthorizationNotFound():
            return problem_response(
                404,
                "authorization-not-found",
                "Authorization not found",
                str(error),
                instance=path,
                authorization_id=error.authorization_id,
            )
        case AuthorizationStateConflict():
            return problem_response(
                409,
                "authorization-state-conflict",
                "Authorization is in another state",
                str(error),
                instance=path,
                authorization_id=error.authorization_id,
                status_now=str(error.status),
            )
        case IdempotencyKeyReused():
            return problem_response(
                422, "idempotency-key-reused", "Idempotency-Key reused", str(error), instance=path
            )
        case _:
            return problem_response(
                400, "request-refused", "Request refused", str(error), instance=path
            )
