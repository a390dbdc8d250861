"""Facts about payments, recorded on the aggregate for publishing later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contracts import Money


@dataclass(frozen=True, slots=True)
class PaymentAuthorized:
    payment_id: str
    order_id: str
    amount: Money
    provider: str


@dataclass(frozen=True, slots=True)
class PaymentDeclined:
    payment_id: str
    order_id: str
    amount: Money
    reason: str


@dataclass(frozen=True, slots=True)
class PaymentCaptured:
    payment_id: str
    order_id: str
    amount: Money


@dataclass(frozen=True, slots=True)
class PaymentVoided:
    payment_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded:
    payment_id: str
    order_id: str
    amount: Money


Event = PaymentAuthorized | PaymentDeclined | PaymentCaptured | PaymentVoided | PaymentRefunded
