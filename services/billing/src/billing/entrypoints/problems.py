"""The one place where billing's domain errors become HTTP problems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, assert_never

from billing.domain.errors import (
    AccountBusy,
    AccountNotFound,
    AuthorizationLost,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidEntry,
    InvalidPayment,
    PaymentAbandoned,
    PaymentNotFound,
    PaymentOutcomeUnknown,
    PaymentStateConflict,
    ProviderUnavailable,
)
from chassis.problems import ProblemError, problem_error_response, public_instance

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

# Seconds a caller should wait before trying again.
PROVIDER_RETRY_AFTER: Final = "2"
IN_FLIGHT_RETRY_AFTER: Final = "1"


async def billing_problem(request: Request, error: Exception) -> Response:
    """Exception handler for BillingError: answer it as problem+json."""
    return problem_error_response(_problem_for(error), instance=public_instance(request))


def _problem_for(error: Exception) -> ProblemError:
    match error:
        case PaymentNotFound():
            problem = ProblemError(
                404,
                "payment-not-found",
                "Payment not found",
                str(error),
                payment_id=error.payment_id,
            )
        case PaymentStateConflict():
            problem = ProblemError(
                409,
                "payment-state-conflict",
                "Payment is in another state",
                str(error),
                payment_id=error.payment_id,
                payment_status=str(error.status),
            )
        case AuthorizationLost():
            problem = ProblemError(
                409,
                "payment-authorization-lost",
                "Authorization lost",
                str(error),
                payment_id=error.payment_id,
                provider=error.provider,
            )
        case IdempotencyKeyInFlight():
            problem = ProblemError(
                409,
                "idempotency-key-in-flight",
                "Request in progress",
                f"{error}; retry shortly to get its outcome",
                headers={"Retry-After": IN_FLIGHT_RETRY_AFTER},
            )
        case IdempotencyKeyReused():
            problem = ProblemError(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                f"{error}; use a new key for a new payment",
            )
        case InvalidPayment():
            problem = ProblemError(
                422, "invalid-payment", "Invalid payment", str(error), field=error.field
            )
        case ProviderUnavailable():
            problem = ProblemError(
                503,
                "payment-provider-unavailable",
                "Payment provider unavailable",
                f"{error}; nothing was charged",
                headers={"Retry-After": PROVIDER_RETRY_AFTER},
                providers=list(error.providers),
            )
        case PaymentOutcomeUnknown():
            problem = ProblemError(
                503,
                "payment-outcome-unknown",
                "Payment outcome unknown",
                str(error),
                headers={"Retry-After": PROVIDER_RETRY_AFTER},
                provider=error.provider,
                payment_id=error.payment_id,
            )
        case PaymentAbandoned():
            problem = ProblemError(409, "payment-abandoned", "Payment abandoned", str(error))
        case AccountNotFound() | InsufficientFunds() | AccountBusy() | InvalidEntry():
            problem = _ledger_problem(error)
        case _:
            # A new BillingError without its own mapping is still the caller's problem, not a 500.
            problem = ProblemError(400, "billing-error", "Request refused", str(error))
    return problem


def _ledger_problem(
    error: AccountNotFound | InsufficientFunds | AccountBusy | InvalidEntry,
) -> ProblemError:
    match error:
        case AccountNotFound():
            return ProblemError(
                404,
                "account-not-found",
                "Account not found",
                str(error),
                account_id=error.account_id,
            )
        case InsufficientFunds():
            return ProblemError(
                409,
                "insufficient-funds",
                "Insufficient funds",
                f"{error}; nothing was drawn",
                account_id=error.account_id,
                balance=error.balance.to_dict(),
            )
        case AccountBusy():
            return ProblemError(
                409,
                "account-busy",
                "Account busy",
                f"{error}; retry shortly with the same Idempotency-Key",
                headers={"Retry-After": IN_FLIGHT_RETRY_AFTER},
                account_id=error.account_id,
            )
        case InvalidEntry():
            return ProblemError(
                422, "invalid-entry", "Invalid entry", str(error), field=error.field
            )
        case _:
            assert_never(error)
