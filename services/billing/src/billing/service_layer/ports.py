"""What the service layer needs from storage and from payment providers, as protocols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chassis import idempotency, unit_of_work

if TYPE_CHECKING:
    from datetime import datetime

    from billing.domain.account import Account
    from billing.domain.events import AccountEvent
    from billing.domain.model import Payment
    from contracts import Money


@dataclass(slots=True)
class IdempotencyRecord(idempotency.IdempotencyRecord):
    """What billing remembers of an Idempotency-Key: the request it came with (the chassis's
    ``key`` and ``fingerprint``) and its payment.

    The payment id is chosen when the key is first seen and never changes, so every attempt
    under one key asks the providers with the same idempotency keys of their own and cannot
    be charged twice. ``locked_until`` is set while a request is with the providers; if that
    request dies, the key is free again once the time has passed.
    """

    payment_id: str
    locked_until: datetime | None
    version: int = 1
    # The provider this key's request was last sent to, noted before sending: it may hold
    # an authorization for the payment, so retries ask it again and no other.
    asked_provider: str | None = None
    # Set once reconciliation found what the provider did with an unanswered request and
    # released it: nothing more is asked under this key.
    settled: bool = False
    # Lookups at the provider that found nothing: one is not enough (a provider that was
    # frozen may still be working through the request), two a settle-time apart are.
    empty_lookups: int = 0

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


class PaymentRepository(Protocol):
    async def get(self, payment_id: str) -> Payment | None:
        """The payment with this id, or None."""

    async def add(self, payment: Payment) -> None:
        """Store a new payment."""

    async def save(self, payment: Payment) -> None:
        """Store a payment's new status."""

    async def for_order(self, order_id: str) -> list[Payment]:
        """The payments of one order, oldest first."""


class IdempotencyKeyRepository(Protocol):
    async def get(self, key: str) -> IdempotencyRecord | None:
        """The record of this key, or None."""

    async def add(self, record: IdempotencyRecord) -> None:
        """Store a new key; raises IdempotencyKeyInFlight if another request stored it first."""

    async def unanswered(self, before: datetime) -> list[IdempotencyRecord]:
        """Claims sent to a provider, never answered (no payment), not settled, and free
        since before ``before``: what reconciliation must settle with the provider."""

    async def save(self, record: IdempotencyRecord) -> None:
        """Store a changed record and bump its version.

        Raises IdempotencyKeyInFlight if the record changed since it was read: two requests
        cannot both take over one key.
        """


class AccountRepository(Protocol):
    """Customers' accounts, each stored as the stream of its entries (event sourced)."""

    async def get(self, account_id: str) -> Account:
        """The account as its entries made it; a fresh one (version 0) if it has none."""

    async def save(self, account: Account) -> None:
        """Append the entries the account recorded, and publish them with this transaction.

        Raises chassis.eventstore.ConcurrencyConflict if another entry landed on the account
        since it was read: nothing is written, and the caller loads it again or gives up.
        """

    async def entry(self, entry_id: str) -> AccountEvent | None:
        """The entry with this id, on whichever account, or None."""

    async def entries(self, account_id: str) -> list[AccountEvent]:
        """Every entry of the account, oldest first."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over billing's storage; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def idempotency_keys(self) -> IdempotencyKeyRepository: ...

    @property
    def accounts(self) -> AccountRepository: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


@dataclass(frozen=True, slots=True)
class ProviderApproval:
    """The provider holds the amount; ``reference`` names that authorization at the provider."""

    reference: str


@dataclass(frozen=True, slots=True)
class ProviderDecline:
    """The card's issuer refused; asking another provider would not change that."""

    reason: str


@dataclass(frozen=True, slots=True)
class ProviderAuthorization:
    """An authorization as the provider lists it: its reference and whether it holds money."""

    reference: str
    holds_money: bool


class ProviderUnreachable(Exception):  # noqa: N818 - a state of the provider, not a bug of ours
    """No usable answer: a timeout, a refused connection or a server error."""


class ProviderOutcomeUnknown(ProviderUnreachable):
    """The request may have reached the provider (a read timeout, a dropped connection, a
    server error) but no answer came back: it may have acted on it."""


class AuthorizationUnknown(Exception):  # noqa: N818 - the provider's answer, not a bug of ours
    """The provider has no such authorization (it expired, or the provider forgot it)."""


class ProviderRefused(Exception):  # noqa: N818 - the provider's answer, not a bug of ours
    """The provider's authorization is in a state that does not allow the operation."""


class PaymentProvider(Protocol):
    """One external card processor. Every call carries an idempotency key of billing's own."""

    @property
    def name(self) -> str: ...

    async def authorize(
        self, *, amount: Money, card_token: str, reference: str, idempotency_key: str
    ) -> ProviderApproval | ProviderDecline:
        """Hold ``amount`` on the card; raises ProviderUnreachable."""

    async def find(self, reference: str) -> list[ProviderAuthorization]:
        """The authorizations made for billing's ``reference``; raises ProviderUnreachable."""

    async def capture(self, authorization: str, *, idempotency_key: str) -> None:
        """Take the held amount.

        Raises ProviderUnreachable, AuthorizationUnknown or ProviderRefused.
        """

    async def void(self, authorization: str, *, idempotency_key: str) -> None:
        """Release the held amount; raises as ``capture`` does."""

    async def refund(self, authorization: str, *, idempotency_key: str) -> None:
        """Give the captured amount back; raises as ``capture`` does."""
