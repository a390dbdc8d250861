"""What can go wrong in billing, in the shop's words."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing.domain.model import PaymentAction, PaymentStatus
    from contracts import Money


class BillingError(Exception):
    """A billing rule was broken, a payment could not be found or taken."""


class PaymentNotFound(BillingError):
    """No payment has this id."""

    def __init__(self, payment_id: str) -> None:
        super().__init__(f"no payment with id {payment_id!r}")
        self.payment_id = payment_id


class InvalidPayment(BillingError):
    """A payment field breaks one of billing's invariants."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PaymentStateConflict(BillingError):
    """The payment's status does not allow this action (capturing a voided payment)."""

    def __init__(self, payment_id: str, status: PaymentStatus, action: PaymentAction) -> None:
        super().__init__(f"cannot {action} payment {payment_id!r}: it is {status}")
        self.payment_id = payment_id
        self.status = status
        self.action = action


class ProviderUnavailable(BillingError):
    """No payment provider could be reached; nothing was charged or changed."""

    def __init__(self, providers: tuple[str, ...]) -> None:
        super().__init__(f"no payment provider answered (tried {', '.join(providers)})")
        self.providers = providers


class AuthorizationLost(BillingError):
    """The provider no longer knows the payment's authorization (it expired or was forgotten)."""

    def __init__(self, payment_id: str, provider: str) -> None:
        super().__init__(
            f"{provider} no longer holds the authorization of payment {payment_id!r}; "
            "void it and authorize a new payment"
        )
        self.payment_id = payment_id
        self.provider = provider


class IdempotencyKeyReused(BillingError):
    """An Idempotency-Key came back with a different request than the one it was first sent with."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different payment")
        self.key = key


class PaymentAbandoned(BillingError):
    """The request made under this Idempotency-Key got no answer and was given up on: billing
    settled it with the provider (released whatever it held). A new payment needs a new key."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the payment requested with Idempotency-Key {key!r} went unanswered and was "
            "released with its provider; send a new key to pay"
        )
        self.key = key


class IdempotencyKeyInFlight(BillingError):
    """Another request with this Idempotency-Key is being handled right now."""

    def __init__(self, key: str) -> None:
        super().__init__(f"a request with Idempotency-Key {key!r} is still being handled")
        self.key = key


class PaymentOutcomeUnknown(BillingError):
    """A provider may have authorized the payment, but its answer was lost.

    Billing never fails over from such a provider (that could hold the amount twice): a
    retry with the same Idempotency-Key asks the same provider, which answers what it did.
    """

    def __init__(self, provider: str, payment_id: str) -> None:
        super().__init__(
            f"{provider} did not answer in time and may have authorized payment {payment_id}; "
            "retry with the same Idempotency-Key to learn the outcome"
        )
        self.provider = provider
        self.payment_id = payment_id


class AccountNotFound(BillingError):
    """No money was ever put on this account."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account with id {account_id!r}")
        self.account_id = account_id


class InvalidEntry(BillingError):
    """A credit or debit breaks one of the ledger's rules (a negative amount, a wrong currency)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InsufficientFunds(BillingError):
    """A debit larger than the account's balance: the balance never goes below zero."""

    def __init__(self, account_id: str, requested: Money, balance: Money) -> None:
        super().__init__(
            f"account {account_id!r} holds {balance.format()}, "
            f"less than the {requested.format()} asked for"
        )
        self.account_id = account_id
        self.requested = requested
        self.balance = balance


class AccountBusy(BillingError):
    """Other entries kept landing on the account first; nothing was written, try again."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"account {account_id!r} is busy with other entries; nothing was written")
        self.account_id = account_id
