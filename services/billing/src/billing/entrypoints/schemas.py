"""The JSON billing's HTTP API reads and writes, one model per purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field

from billing.domain.commands import AuthorizePayment
from billing.domain.model import (
    CUSTOMER_ID_MAX_LENGTH,
    ORDER_ID_MAX_LENGTH,
    Payment,
    PaymentStatus,
)
from chassis.schemas import MinorUnits, MoneyModel

# A card as the provider's payment form tokenised it; billing never sees card numbers.
TOKENISED_CARD_PATTERN: Final = r"^tok_[A-Za-z0-9_]{1,64}$"


class Amount(MoneyModel):
    """An amount in integer minor units (cents for EUR) and its ISO 4217 currency."""

    amount: Annotated[MinorUnits, Field(gt=0)]


class PaymentRequest(BaseModel):
    """Take payment for an order: the amount is authorized now and captured later."""

    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=ORDER_ID_MAX_LENGTH, examples=["order-1042"])
    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=CUSTOMER_ID_MAX_LENGTH,
        description="Whom the order is for: named in the payment's events, so they can be told.",
        examples=["customer-7"],
    )
    amount: Amount
    card_token: str = Field(
        pattern=TOKENISED_CARD_PATTERN,
        description="The card, tokenised by the provider's payment form.",
        examples=["tok_ok"],
    )

    def to_command(self, idempotency_key: str) -> AuthorizePayment:
        return AuthorizePayment(
            order_id=self.order_id,
            amount=self.amount.to_money(),
            card_token=self.card_token,
            idempotency_key=idempotency_key,
            customer_id=self.customer_id,
        )


class PaymentPublic(BaseModel):
    """A payment and where it stands."""

    id: str = Field(examples=["6f0b9d2e-8f1c-4e7a-9d3b-2c5a1e4f7b80"])
    order_id: str = Field(examples=["order-1042"])
    customer_id: str | None = Field(
        description="Whom the order is for, if the request said.", examples=["customer-7"]
    )
    status: PaymentStatus
    amount: Amount
    provider: str = Field(
        description="The provider that authorized (or declined) it, and settles it.",
        examples=["payment-primary"],
    )
    provider_reference: str | None = Field(
        description="The provider's id of the authorization; null for a declined payment.",
        examples=["auth_5f1c0a9e2b7d4c3e8a6f1b2c3d4e5f60"],
    )
    decline_reason: str | None = Field(
        description="Why the card was declined; null unless the status is DECLINED.",
        examples=[None],
    )
    created_at: datetime

    @classmethod
    def from_domain(cls, payment: Payment) -> PaymentPublic:
        return cls(
            id=payment.id,
            order_id=payment.order_id,
            customer_id=payment.customer_id,
            status=payment.status,
            amount=Amount.from_money(payment.amount),
            provider=payment.provider,
            provider_reference=payment.provider_reference,
            decline_reason=payment.decline_reason,
            created_at=payment.created_at,
        )
