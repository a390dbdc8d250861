"""The JSON billing's HTTP API reads and writes, one model per purpose."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from billing.domain.account import REFERENCE_MAX_LENGTH, Account
from billing.domain.commands import AuthorizePayment, CreditAccount, DebitAccount
from billing.domain.events import (
    AccountCredited,
    AccountEvent,
    CreditReason,
    DebitReason,
)
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


Reference = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=REFERENCE_MAX_LENGTH,
        description="What the entry is for, e.g. the order a payment or a refund belongs to.",
        examples=["order-1042"],
    ),
]


class CreditRequest(BaseModel):
    """Put money on a customer's account: a top-up, or a refund as store credit."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    reason: CreditReason = Field(examples=[CreditReason.TOP_UP])
    reference: Reference = None

    def to_command(self, account_id: str, idempotency_key: str) -> CreditAccount:
        return CreditAccount(
            account_id=account_id,
            amount=self.amount.to_money(),
            reason=self.reason,
            idempotency_key=idempotency_key,
            reference=self.reference,
        )


class DebitRequest(BaseModel):
    """Draw money from a customer's account to pay; refused if the account holds less."""

    model_config = ConfigDict(extra="forbid")

    amount: Amount
    reason: DebitReason = DebitReason.PAYMENT
    reference: Reference = None

    def to_command(self, account_id: str, idempotency_key: str) -> DebitAccount:
        return DebitAccount(
            account_id=account_id,
            amount=self.amount.to_money(),
            reason=self.reason,
            idempotency_key=idempotency_key,
            reference=self.reference,
        )


class Balance(MoneyModel):
    """An account's balance: never below zero."""

    amount: Annotated[MinorUnits, Field(ge=0)]


class EntryPublic(BaseModel):
    """One entry of an account's ledger, with the balance it left."""

    id: str = Field(examples=["3f0c1e2a9b8d4c7e8f6a5b4c3d2e1f00"])
    account_id: str = Field(examples=["customer-7"])
    kind: Literal["credit", "debit"]
    reason: CreditReason | DebitReason
    amount: Amount
    reference: str | None = Field(examples=["order-1042"])
    balance: Balance
    occurred_at: datetime

    @classmethod
    def from_domain(cls, entry: AccountEvent) -> EntryPublic:
        return cls(
            id=entry.entry_id,
            account_id=entry.account_id,
            kind="credit" if isinstance(entry, AccountCredited) else "debit",
            reason=entry.reason,
            amount=Amount.from_money(entry.amount),
            reference=entry.reference,
            balance=Balance.from_money(entry.balance),
            occurred_at=entry.occurred_at,
        )


class AccountPublic(BaseModel):
    """A customer's account: its balance, and how many entries made it."""

    id: str = Field(examples=["customer-7"])
    balance: Balance
    entries: int = Field(description="How many entries the account has (its version).")
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, account: Account) -> AccountPublic:
        if account.balance is None or account.opened_at is None or account.updated_at is None:
            raise ValueError("an account is shown once it is opened")
        return cls(
            id=account.id,
            balance=Balance.from_money(account.balance),
            entries=account.version,
            opened_at=account.opened_at,
            updated_at=account.updated_at,
        )
