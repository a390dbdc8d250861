"""The Payment aggregate: money held on a card for an order, then taken, released or returned."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import TYPE_CHECKING, Final, TypedDict

from billing.domain.errors import InvalidPayment, PaymentStateConflict
from contracts.events import (
    Event,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRefunded,
    PaymentVoided,
    occurred_now,
)

if TYPE_CHECKING:
    from datetime import datetime

    from contracts import Money


class _LaterEventFields(TypedDict):
    """What the events of a payment's later steps (captured, voided, refunded) all carry."""

    payment_id: str
    order_id: str
    amount: Money
    occurred_at: str
    customer_id: str | None


ORDER_ID_MAX_LENGTH: Final = 64
CUSTOMER_ID_MAX_LENGTH: Final = 100


class PaymentStatus(StrEnum):
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    CAPTURED = "CAPTURED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


class PaymentAction(StrEnum):
    """What can happen to a payment after it was authorized."""

    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


# Each action leads from one status to the next, and only from there.
_TRANSITIONS: Final = {
    PaymentAction.CAPTURE: (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED),
    PaymentAction.VOID: (PaymentStatus.AUTHORIZED, PaymentStatus.VOIDED),
    PaymentAction.REFUND: (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED),
}


def new_payment_id() -> str:
    return str(uuid.uuid4())


class Payment:
    """One attempt to take money for an order, through one provider.

    An authorized payment remembers the provider that authorized it and that provider's
    reference, since only that provider can capture, void or refund it. Change a payment
    only through its methods; repeating one that already happened changes nothing.
    """

    def __init__(
        self,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        order_id: str,
        amount: Money,
        status: PaymentStatus,
        provider: str,
        created_at: datetime,
        provider_reference: str | None = None,
        decline_reason: str | None = None,
        customer_id: str | None = None,
    ) -> None:
        if (status is PaymentStatus.DECLINED) != (provider_reference is None):
            raise InvalidPayment(
                "provider_reference", "a payment has one unless, and only unless, it was declined"
            )
        self.id = id
        self.order_id = _checked_order_id(order_id)
        self.amount = _checked_amount(amount)
        self.status = status
        self.provider = provider
        self.created_at = created_at
        self.provider_reference = provider_reference
        self.decline_reason = decline_reason
        # Whom the order's caller said the money is from; billing needs it only to say so.
        self.customer_id = _checked_customer_id(customer_id)
        self.events: list[Event] = []

    @classmethod
    def authorized(
        cls,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        order_id: str,
        amount: Money,
        provider: str,
        provider_reference: str,
        at: datetime,
        customer_id: str | None = None,
    ) -> Payment:
        """A payment whose amount ``provider`` now holds on the card."""
        payment = cls(
            id=id,
            order_id=order_id,
            amount=amount,
            status=PaymentStatus.AUTHORIZED,
            provider=provider,
            provider_reference=provider_reference,
            created_at=at,
            customer_id=customer_id,
        )
        payment.events.append(
            PaymentAuthorized(
                payment_id=id,
                order_id=payment.order_id,
                amount=payment.amount,
                provider=provider,
                occurred_at=occurred_now(),
                customer_id=payment.customer_id,
            )
        )
        return payment

    @classmethod
    def declined(
        cls,
        *,
        id: str,  # noqa: A002 - the aggregate's identity is called id everywhere
        order_id: str,
        amount: Money,
        provider: str,
        reason: str,
        at: datetime,
        customer_id: str | None = None,
    ) -> Payment:
        """A payment the card's issuer refused: an outcome for the caller, not an error."""
        payment = cls(
            id=id,
            order_id=order_id,
            amount=amount,
            status=PaymentStatus.DECLINED,
            provider=provider,
            decline_reason=reason,
            created_at=at,
            customer_id=customer_id,
        )
        payment.events.append(
            PaymentDeclined(
                payment_id=id,
                order_id=payment.order_id,
                amount=payment.amount,
                reason=reason,
                occurred_at=occurred_now(),
                customer_id=payment.customer_id,
            )
        )
        return payment

    @property
    def authorization(self) -> str:
        """The provider's reference for the money it holds; a declined payment has none."""
        if self.provider_reference is None:
            raise InvalidPayment("provider_reference", "a declined payment has no authorization")
        return self.provider_reference

    def capture(self) -> None:
        """Take the authorized amount."""
        if self._advance(PaymentAction.CAPTURE):
            self.events.append(PaymentCaptured(**self._event_fields()))

    def void(self) -> None:
        """Release an authorization that will not be captured."""
        if self._advance(PaymentAction.VOID):
            self.events.append(PaymentVoided(**self._event_fields()))

    def refund(self) -> None:
        """Give a captured amount back, in full."""
        if self._advance(PaymentAction.REFUND):
            self.events.append(PaymentRefunded(**self._event_fields()))

    def _event_fields(self) -> _LaterEventFields:
        return {
            "payment_id": self.id,
            "order_id": self.order_id,
            "amount": self.amount,
            "occurred_at": occurred_now(),
            "customer_id": self.customer_id,
        }

    def _advance(self, action: PaymentAction) -> bool:
        """Move to the status ``action`` leads to; False if the payment is already there."""
        source, target = _TRANSITIONS[action]
        if self.status is target:
            return False
        if self.status is not source:
            raise PaymentStateConflict(self.id, self.status, action)
        self.status = target
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payment) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Payment(id={self.id!r}, order_id={self.order_id!r}, status={self.status})"


def _checked_order_id(order_id: str) -> str:
    if not order_id.strip() or len(order_id) > ORDER_ID_MAX_LENGTH:
        raise InvalidPayment(
            "order_id", f"must be 1-{ORDER_ID_MAX_LENGTH} characters, not blank; got {order_id!r}"
        )
    return order_id


def _checked_customer_id(customer_id: str | None) -> str | None:
    if customer_id is not None and (
        not customer_id.strip() or len(customer_id) > CUSTOMER_ID_MAX_LENGTH
    ):
        raise InvalidPayment(
            "customer_id",
            f"must be 1-{CUSTOMER_ID_MAX_LENGTH} characters, not blank; got {customer_id!r}",
        )
    return customer_id


def _checked_amount(amount: Money) -> Money:
    if amount.amount <= 0:
        raise InvalidPayment("amount", f"must be positive; got {amount.format()}")
    return amount
