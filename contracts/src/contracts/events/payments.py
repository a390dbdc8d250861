"""Events of topic ``payments``, keyed by order id: billing's payments and what became of them.

``customer_id`` is the customer the payment was taken from, when the caller said (orders
does); payments made before billing was told it carry None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

from contracts.events.schema import Event, register
from contracts.money import Money

TOPIC: Final = "payments"


@dataclass(frozen=True, slots=True)
class PaymentAuthorized(Event):
    """A provider holds the amount on the card."""

    event_type: ClassVar[str] = "PaymentAuthorized"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    payment_id: str
    order_id: str
    amount: Money
    provider: str
    occurred_at: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentDeclined(Event):
    """The card's issuer refused the payment."""

    event_type: ClassVar[str] = "PaymentDeclined"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    payment_id: str
    order_id: str
    amount: Money
    reason: str
    occurred_at: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentCaptured(Event):
    """The held amount was taken."""

    event_type: ClassVar[str] = "PaymentCaptured"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    payment_id: str
    order_id: str
    amount: Money
    occurred_at: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentVoided(Event):
    """The held amount was released without being taken."""

    event_type: ClassVar[str] = "PaymentVoided"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    payment_id: str
    order_id: str
    amount: Money
    occurred_at: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentRefunded(Event):
    """The taken amount was given back, in full."""

    event_type: ClassVar[str] = "PaymentRefunded"
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "order_id"

    payment_id: str
    order_id: str
    amount: Money
    occurred_at: str
    customer_id: str | None = None


register(PaymentAuthorized, PaymentDeclined, PaymentCaptured, PaymentVoided, PaymentRefunded)
