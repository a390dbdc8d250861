"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Self

from billing.domain.account import Account
from billing.domain.errors import IdempotencyKeyInFlight
from billing.service_layer.ports import (
    AuthorizationUnknown,
    IdempotencyRecord,
    ProviderApproval,
    ProviderDecline,
    ProviderRefused,
    ProviderUnreachable,
)
from chassis.eventstore import ConcurrencyConflict
from contracts import Money

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from billing.domain.events import AccountEvent
    from billing.domain.model import Payment


DECLINING_CARD = "tok_decline"


def _loaded(payment: Payment) -> Payment:
    loaded = copy.deepcopy(payment)
    loaded.events.clear()
    return loaded


class FakePaymentRepository:
    """Payments in a dict; like rows, what is read back carries no events."""

    def __init__(self, payments: dict[str, Payment]) -> None:
        self._payments = payments

    async def get(self, payment_id: str) -> Payment | None:
        payment = self._payments.get(payment_id)
        return None if payment is None else _loaded(payment)

    async def add(self, payment: Payment) -> None:
        self._payments[payment.id] = copy.deepcopy(payment)

    async def save(self, payment: Payment) -> None:
        self._payments[payment.id] = copy.deepcopy(payment)

    async def for_order(self, order_id: str) -> list[Payment]:
        found = [p for p in self._payments.values() if p.order_id == order_id]
        return [_loaded(p) for p in sorted(found, key=lambda p: (p.created_at, p.id))]


class FakeIdempotencyKeyRepository:
    """Records keyed by Idempotency-Key; like the table, a second add or a stale save fails."""

    def __init__(self, records: dict[str, IdempotencyRecord]) -> None:
        self._records = records

    async def get(self, key: str) -> IdempotencyRecord | None:
        return copy.deepcopy(self._records.get(key))

    async def add(self, record: IdempotencyRecord) -> None:
        if record.key in self._records:
            raise IdempotencyKeyInFlight(record.key)
        self._records[record.key] = copy.deepcopy(record)

    async def save(self, record: IdempotencyRecord) -> None:
        if self._records[record.key].version != record.version:
            raise IdempotencyKeyInFlight(record.key)
        record.version += 1
        self._records[record.key] = copy.deepcopy(record)


class FakeAccountRepository:
    """Accounts as lists of events; like the event store, an append must name the version
    that is committed (the committed streams, not this transaction's copy, decide).

    ``interloper``, if set, runs after each ``get``: a test's rival who writes first.
    """

    def __init__(
        self, committed: dict[str, list[AccountEvent]], appended: dict[str, list[AccountEvent]]
    ) -> None:
        self._committed = committed
        self._appended = appended
        self.interloper: Callable[[], None] | None = None

    async def get(self, account_id: str) -> Account:
        account = Account(account_id)
        for event in self._committed.get(account_id, []):
            account.apply(event)
        if self.interloper is not None:
            self.interloper()
        return account

    async def save(self, account: Account) -> None:
        expected = account.version - len(account.pending_events)
        if len(self._committed.get(account.id, [])) != expected:
            raise ConcurrencyConflict(f"account-{account.id}", expected)
        self._appended.setdefault(account.id, []).extend(account.pending_events)
        account.pending_events.clear()

    async def entry(self, entry_id: str) -> AccountEvent | None:
        return next(
            (e for events in self._committed.values() for e in events if e.entry_id == entry_id),
            None,
        )

    async def entries(self, account_id: str) -> list[AccountEvent]:
        return list(self._committed.get(account_id, []))


class FakeUnitOfWork:
    """Each ``async with`` works on a copy of the books that only ``commit`` keeps.

    Commits of concurrent units of work apply what each changed, as a database would.
    """

    payments: FakePaymentRepository
    idempotency_keys: FakeIdempotencyKeyRepository
    accounts: FakeAccountRepository

    def __init__(self) -> None:
        self.committed_payments: dict[str, Payment] = {}
        self.committed_keys: dict[str, IdempotencyRecord] = {}
        self.committed_accounts: dict[str, list[AccountEvent]] = {}
        self.interloper: Callable[[], None] | None = None

    async def __aenter__(self) -> Self:
        self._payments = copy.deepcopy(self.committed_payments)
        self._keys = copy.deepcopy(self.committed_keys)
        self._appended: dict[str, list[AccountEvent]] = {}
        self.payments = FakePaymentRepository(self._payments)
        self.idempotency_keys = FakeIdempotencyKeyRepository(self._keys)
        self.accounts = FakeAccountRepository(self.committed_accounts, self._appended)
        self.accounts.interloper = self.interloper
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        del self._payments, self._keys, self._appended

    async def commit(self) -> None:
        self.committed_payments.update(copy.deepcopy(self._payments))
        self.committed_keys.update(copy.deepcopy(self._keys))
        for account_id, events in self._appended.items():
            self.committed_accounts.setdefault(account_id, []).extend(events)
        self._appended.clear()


class FakeProvider:
    """A provider that answers as told and remembers every call as (operation, key)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reachable = True
        self.forgetful = False
        self.refusing = False
        self.calls: list[tuple[str, str]] = []
        self.called = asyncio.Event()
        # Set to make authorizations wait until the test lets them go on.
        self.hold: asyncio.Event | None = None

    async def authorize(
        self,
        *,
        amount: Money,  # noqa: ARG002 - the fake approves any amount
        card_token: str,
        reference: str,
        idempotency_key: str,
    ) -> ProviderApproval | ProviderDecline:
        self.calls.append(("authorize", idempotency_key))
        self.called.set()
        if self.hold is not None:
            await self.hold.wait()
        if not self.reachable:
            raise ProviderUnreachable(f"{self.name} is down")
        if card_token == DECLINING_CARD:
            return ProviderDecline(reason="card_declined")
        return ProviderApproval(reference=f"auth-{self.name}-{reference}")

    async def capture(self, authorization: str, *, idempotency_key: str) -> None:
        self._settle("capture", authorization, idempotency_key)

    async def void(self, authorization: str, *, idempotency_key: str) -> None:
        self._settle("void", authorization, idempotency_key)

    async def refund(self, authorization: str, *, idempotency_key: str) -> None:
        self._settle("refund", authorization, idempotency_key)

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]

    def _settle(self, operation: str, authorization: str, idempotency_key: str) -> None:
        assert authorization.startswith(f"auth-{self.name}-")
        self.calls.append((operation, idempotency_key))
        if not self.reachable:
            raise ProviderUnreachable(f"{self.name} is down")
        if self.forgetful:
            raise AuthorizationUnknown(authorization)
        if self.refusing:
            raise ProviderRefused(authorization)
