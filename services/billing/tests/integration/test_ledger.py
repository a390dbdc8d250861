"""The ledger through billing's API, on SQLite and on PostgreSQL: customers' accounts are
event sourced, their balance never goes below zero (also under concurrent debits), every
entry is published from the transaction that stores it, and snapshots change nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import select

from billing.adapters.unit_of_work import SqlAlchemyUnitOfWork
from billing.app import create_app
from billing.settings import BillingSettings
from chassis.eventstore.tables import snapshots
from chassis.messaging import connect
from chassis.messaging.tables import outbox
from chassis.testing import ReadableTokens, readable_bearer
from contracts import Money
from contracts.events import decode, ledger
from souk.testing import scratch_database

from .test_api import problem_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from fastapi import FastAPI

    from chassis import Database
    from chassis.messaging import DeadLetter, Delivery, Message

# Services (and admins' scripts) move money; readers only look.
WRITER = readable_bearer("orders", "payments:write", "payments:read")
READER = readable_bearer("support", "payments:read")
SNAPSHOT_EVERY = 3
# The ledger's routes never reach a provider, but billing needs their addresses to start.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, or a scratch database on the local PostgreSQL."""
    async with scratch_database(request.param, tmp_path, "ledger") as url:
        yield url


@pytest.fixture
def ledger_settings(tmp_path: Path, database_url: str) -> BillingSettings:
    return BillingSettings(
        data_dir=tmp_path,
        instance="billing-test",
        database_url=database_url,
        ledger_snapshot_every=SNAPSHOT_EVERY,
        upstreams={"payment-primary": [NOWHERE], "payment-backup": [NOWHERE]},
    )


@pytest.fixture
async def billing_app(ledger_settings: BillingSettings) -> AsyncIterator[FastAPI]:
    app = create_app(ledger_settings)
    app.state.token_validator = ReadableTokens()
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def billing(billing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=billing_app), base_url="http://billing", headers=WRITER
    ) as client:
        yield client


@pytest.fixture
def database(billing_app: FastAPI) -> Database:
    started: Database = billing_app.state.database
    return started


def eur(cents: int) -> dict[str, Any]:
    return {"amount": cents, "currency": "EUR"}


async def credit(
    billing: httpx.AsyncClient,
    cents: int,
    *,
    account: str = "customer-7",
    key: str | None = None,
    reason: str = "top-up",
) -> httpx.Response:
    return await billing.post(
        f"/accounts/{account}/credits",
        json={"amount": eur(cents), "reason": reason},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


async def debit(
    billing: httpx.AsyncClient,
    cents: int,
    *,
    account: str = "customer-7",
    key: str | None = None,
    reference: str | None = "order-1042",
) -> httpx.Response:
    return await billing.post(
        f"/accounts/{account}/debits",
        json={"amount": eur(cents), "reference": reference},
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
    )


async def balance(billing: httpx.AsyncClient, account: str = "customer-7") -> int:
    response = await billing.get(f"/accounts/{account}")
    assert response.status_code == 200, response.text
    cents: int = response.json()["balance"]["amount"]
    return cents


async def test_a_top_up_opens_the_account_and_a_payment_draws_from_it(
    billing: httpx.AsyncClient,
) -> None:
    topped = await credit(billing, 2000)
    paid = await debit(billing, 1490)

    assert topped.status_code == 201, topped.text
    assert topped.headers["location"].endswith("/accounts/customer-7")
    assert paid.status_code == 201, paid.text
    assert paid.json()["balance"] == eur(510)
    account = (await billing.get("/accounts/customer-7")).json()
    assert (account["balance"], account["entries"]) == (eur(510), 2)
    entries = (await billing.get("/accounts/customer-7/entries")).json()
    assert [(e["kind"], e["reason"], e["amount"]["amount"], e["reference"]) for e in entries] == [
        ("credit", "top-up", 2000, None),
        ("debit", "payment", 1490, "order-1042"),
    ]


async def test_a_debit_larger_than_the_balance_is_refused_and_draws_nothing(
    billing: httpx.AsyncClient,
) -> None:
    await credit(billing, 1000)

    body = problem_of(await debit(billing, 1001), 409, "insufficient-funds")

    assert body["balance"] == eur(1000)
    assert await balance(billing) == 1000
    assert len((await billing.get("/accounts/customer-7/entries")).json()) == 1


async def test_an_account_never_credited_is_not_found_and_has_nothing_to_draw(
    billing: httpx.AsyncClient,
) -> None:
    problem_of(await billing.get("/accounts/nobody"), 404, "account-not-found")
    problem_of(await billing.get("/accounts/nobody/entries"), 404, "account-not-found")
    problem_of(await debit(billing, 1, account="nobody"), 409, "insufficient-funds")
    problem_of(await billing.get("/accounts/nobody"), 404, "account-not-found")


async def test_an_entry_in_another_currency_or_of_nothing_is_refused(
    billing: httpx.AsyncClient,
) -> None:
    await credit(billing, 1000)

    in_dollars = await billing.post(
        "/accounts/customer-7/credits",
        json={"amount": {"amount": 500, "currency": "USD"}, "reason": "top-up"},
        headers={"Idempotency-Key": "usd"},
    )
    of_nothing = await debit(billing, 0)

    assert problem_of(in_dollars, 422, "invalid-entry")["field"] == "amount"
    assert of_nothing.status_code == 422
    assert await balance(billing) == 1000


async def test_of_two_concurrent_debits_that_together_exceed_the_balance_one_is_refused(
    billing: httpx.AsyncClient,
) -> None:
    await credit(billing, 10000)

    answers = await asyncio.gather(debit(billing, 6000), debit(billing, 6000))

    assert sorted(a.status_code for a in answers) == [201, 409]
    refused = next(a for a in answers if a.status_code == 409)
    problem_of(refused, 409, "insufficient-funds")
    assert await balance(billing) == 4000


async def test_a_burst_of_concurrent_debits_never_takes_the_balance_below_zero(
    billing: httpx.AsyncClient,
) -> None:
    await credit(billing, 10000)

    answers = await asyncio.gather(*(debit(billing, 3000) for _ in range(10)))

    drawn = [a for a in answers if a.status_code == 201]
    refused = {a.json()["type"].rsplit("/", 1)[-1] for a in answers if a.status_code != 201}
    # Three fit; every other one was refused (for want of funds, or, having lost the race
    # too often, as busy): none was drawn on top.
    assert len(drawn) == 3
    assert {a.status_code for a in answers} == {201, 409}
    assert refused <= {"insufficient-funds", "account-busy"}
    assert await balance(billing) == 1000
    entries = (await billing.get("/accounts/customer-7/entries")).json()
    assert [e["balance"]["amount"] for e in entries] == [10000, 7000, 4000, 1000]


async def test_an_idempotency_key_makes_one_entry_however_often_and_concurrently_it_is_sent(
    billing: httpx.AsyncClient,
) -> None:
    await credit(billing, 5000)

    answers = await asyncio.gather(*(debit(billing, 1490, key="pay-order-1042") for _ in range(4)))
    again = await debit(billing, 1490, key="pay-order-1042")

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert again.status_code == 200
    assert len({a.json()["id"] for a in [*answers, again]}) == 1
    assert await balance(billing) == 3510
    problem_of(await debit(billing, 999, key="pay-order-1042"), 422, "idempotency-key-reused")
    problem_of(await credit(billing, 1490, key="pay-order-1042"), 422, "idempotency-key-reused")


async def test_every_entry_is_published_on_the_ledger_topic_keyed_by_its_account(
    billing: httpx.AsyncClient, database: Database
) -> None:
    credited = (await credit(billing, 2000, account="customer-9")).json()
    debited = (await debit(billing, 500, account="customer-9")).json()
    problem_of(await debit(billing, 5000, account="customer-9"), 409, "insufficient-funds")

    async with database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(outbox).where(outbox.c.topic == "ledger").order_by(outbox.c.id)
            )
        ).all()
    events = [decode(row.event_type, row.schema_version, row.payload) for row in rows]

    assert [(row.key, row.message_id) for row in rows] == [
        ("customer-9", credited["id"]),
        ("customer-9", debited["id"]),
    ]
    assert events == [
        ledger.AccountCredited(
            account_id="customer-9",
            entry_id=credited["id"],
            amount=Money(2000, "EUR"),
            reason="top-up",
            balance=Money(2000, "EUR"),
            occurred_at=events[0].occurred_at,  # type: ignore[attr-defined]
        ),
        ledger.AccountDebited(
            account_id="customer-9",
            entry_id=debited["id"],
            amount=Money(500, "EUR"),
            reason="payment",
            balance=Money(1500, "EUR"),
            occurred_at=events[1].occurred_at,  # type: ignore[attr-defined]
            reference="order-1042",
        ),
    ]


class Refuse:
    """A dead-letter sink for a test's listener, which never fails."""

    async def bury(self, dead_letter: DeadLetter) -> None:
        raise AssertionError(f"the listener failed: {dead_letter.error}")


async def test_the_entries_reach_the_bus_in_the_order_they_were_made(
    ledger_settings: BillingSettings, billing: httpx.AsyncClient
) -> None:
    bus = connect(ledger_settings.broker_url_or_default())
    await bus.start()
    received: list[Message] = []
    both = asyncio.Event()

    async def listen(delivery: Delivery) -> None:
        received.append(delivery.message)
        if len(received) == 2:
            both.set()

    try:
        await bus.subscribe(ledger.TOPIC, "ledger-listener", listen, dead_letters=Refuse())
        credited = (await credit(billing, 2000)).json()
        debited = (await debit(billing, 700)).json()
        async with asyncio.timeout(30):
            await both.wait()
    finally:
        await bus.close()

    assert [(m.key, m.event_type, m.message_id) for m in received] == [
        ("customer-7", "AccountCredited", credited["id"]),
        ("customer-7", "AccountDebited", debited["id"]),
    ]


async def test_an_account_loaded_from_its_snapshots_equals_its_full_replay(
    billing: httpx.AsyncClient, database: Database
) -> None:
    for cents in (1000, 250, 4000, 75, 600, 30, 2000):
        assert (await credit(billing, cents, reason="refund")).status_code == 201
    for cents in (900, 4000):
        assert (await debit(billing, cents)).status_code == 201

    async with database.sessionmaker() as session:
        taken = (await session.execute(select(snapshots.c.version))).scalars().all()
    uow = SqlAlchemyUnitOfWork(database.sessionmaker, snapshot_every=SNAPSHOT_EVERY)
    async with uow:
        loaded = await uow.accounts.get("customer-7")
        replayed = await uow.accounts.replay("customer-7")

    assert sorted(taken) == [3, 6, 9]
    assert vars(loaded) == vars(replayed)
    assert (loaded.balance, loaded.version) == (Money(3055, "EUR"), 9)
    assert await balance(billing) == 3055


async def test_moving_money_needs_payments_write_and_an_idempotency_key(
    billing_app: FastAPI, billing: httpx.AsyncClient
) -> None:
    await credit(billing, 1000)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=billing_app), base_url="http://billing"
    ) as anonymous:
        problem_of(await credit(anonymous, 100), 401, "unauthorized")
        problem_of(await anonymous.get("/accounts/customer-7"), 401, "unauthorized")
        anonymous.headers.update(READER)
        problem_of(await credit(anonymous, 100), 403, "insufficient-scope")
        problem_of(await debit(anonymous, 100), 403, "insufficient-scope")
        assert (await anonymous.get("/accounts/customer-7")).status_code == 200

    missing_key = await billing.post("/accounts/customer-7/debits", json={"amount": eur(100)})
    problem_of(missing_key, 400, "idempotency-key-required")
    assert await balance(billing) == 1000


@pytest.mark.parametrize(
    "account", ["kund\u00e9-7", "k\u00fcnde-\u4e00", "customer%0D%0AX-Evil:%201", "a%00b"]
)
async def test_an_account_id_a_header_cannot_carry_is_refused_before_anything_is_saved(
    billing: httpx.AsyncClient, account: str
) -> None:
    response = await credit(billing, 500, account=account)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_credit_beyond_the_bound_is_a_422_not_a_500(billing: httpx.AsyncClient) -> None:
    response = await credit(billing, 2**63)

    assert response.status_code == 422, response.text
    assert (await billing.get("/accounts/customer-7")).status_code == 404
