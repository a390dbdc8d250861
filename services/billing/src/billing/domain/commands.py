"""What callers ask billing to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.domain.events import CreditReason, DebitReason
    from contracts import Money


@dataclass(frozen=True, slots=True)
class AuthorizePayment:
    """Hold ``amount`` on a card for an order; ``idempotency_key`` makes retries safe.

    ``customer_id``, if the caller knows it, is kept with the payment and named in its events.
    """

    order_id: str
    amount: Money
    card_token: str
    idempotency_key: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class CapturePayment:
    payment_id: str


@dataclass(frozen=True, slots=True)
class VoidPayment:
    payment_id: str


@dataclass(frozen=True, slots=True)
class RefundPayment:
    payment_id: str


@dataclass(frozen=True, slots=True)
class CreditAccount:
    """Put ``amount`` on a customer's account; ``idempotency_key`` makes retries safe."""

    account_id: str
    amount: Money
    reason: CreditReason
    idempotency_key: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class DebitAccount:
    """Draw ``amount`` from a customer's account, if it holds that much."""

    account_id: str
    amount: Money
    reason: DebitReason
    idempotency_key: str
    reference: str | None = None
