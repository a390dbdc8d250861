"""Billing's providers behind breakers: failover at once when the primary's breaker is open,
and unanswered claims settled with the provider so no money stays held."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from billing.settings import BillingSettings
from chassis.resilience import DependencyPolicy

from .conftest import PROVIDER_TIMEOUT
from .test_api import pay, problem_of

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi import FastAPI

    from .conftest import SimulatedProvider

FROZEN_MS = int((PROVIDER_TIMEOUT + 1.0) * 1000)


@pytest.fixture
def settings(  # billing_app and billing (conftest.py) start billing with these
    tmp_path: Path, primary: SimulatedProvider, backup: SimulatedProvider
) -> BillingSettings:
    return BillingSettings(
        data_dir=tmp_path,
        instance="billing-test",
        provider_timeout=PROVIDER_TIMEOUT,
        upstreams={"payment-primary": [primary.url], "payment-backup": [backup.url]},
        resilience={"payment-primary": DependencyPolicy.model_validate({"failure_threshold": 2})},
        reconcile_interval=0.1,
        # Longer than the provider keeps working on a request billing gave up on (a real
        # settle time is minutes): a lookup before then could miss what it is still doing.
        settle_after=FROZEN_MS / 1000 + 0.5,
    )


async def eventually_settled(
    provider: SimulatedProvider, payment_id: str, *, seconds: float = 10
) -> list[dict[str, Any]]:
    """The provider's authorizations for the payment, once one exists and none holds money."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    found: list[dict[str, Any]] = []
    while loop.time() < until:
        found = await provider.authorizations_for(payment_id)
        if found and all(a["status"] != "authorized" for a in found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"still held at {provider.service} after {seconds}s: {found}")


async def test_once_the_primarys_breaker_opens_new_payments_go_to_the_backup_at_once(
    billing: httpx.AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    await primary.simulate(latency_ms=FROZEN_MS)
    for key in ("key-1", "key-2"):  # the threshold: two calls the primary left unanswered
        problem_of(await pay(billing, key, order_id=key), 503, "payment-outcome-unknown")

    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await pay(billing, "key-3", order_id="order-3")
    waited = loop.time() - started

    assert response.status_code == 201, response.text
    assert response.json()["provider"] == "payment-backup"
    assert waited < PROVIDER_TIMEOUT  # not a timeout first: the open breaker refused at once
    # A payment in doubt at the primary stays pinned to it, breaker open or not.
    pinned = problem_of(
        await pay(billing, "key-1", order_id="key-1"), 503, "payment-outcome-unknown"
    )
    assert pinned["provider"] == "payment-primary"
    assert await backup.authorizations_for(pinned["payment_id"]) == []


async def test_an_authorization_made_after_billing_stopped_waiting_is_voided_by_reconciliation(
    billing: httpx.AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    # The primary is "frozen" past billing's timeout: it authorizes only after billing gave
    # up and the caller (the saga) moved on. Then it thaws.
    await primary.simulate(latency_ms=FROZEN_MS)
    body = problem_of(await pay(billing), 503, "payment-outcome-unknown")
    payment_id = body["payment_id"]
    await primary.simulate(latency_ms=0)

    settled = await eventually_settled(primary, payment_id)

    assert [a["status"] for a in settled] == ["voided"]
    assert await backup.authorizations_for(payment_id) == []
    # Nothing asks under that key again: a retry is told the payment was abandoned.
    problem_of(await pay(billing), 409, "payment-abandoned")
    assert [a["status"] for a in await primary.authorizations_for(payment_id)] == ["voided"]


async def test_a_claim_the_provider_never_carried_out_is_settled_after_two_empty_lookups(
    billing: httpx.AsyncClient, billing_app: FastAPI, primary: SimulatedProvider
) -> None:
    # Billing gives up waiting; the primary then refuses (503) what it never carried out.
    await primary.simulate(latency_ms=FROZEN_MS, outage=True)
    body = problem_of(await pay(billing), 503, "payment-outcome-unknown")
    await asyncio.sleep(FROZEN_MS / 1000)
    await primary.simulate(latency_ms=0, outage=False)

    loop = asyncio.get_running_loop()
    until = loop.time() + 10
    while not await _settled(billing_app, "key-1"):
        assert loop.time() < until, "the claim was never settled"
        await asyncio.sleep(0.1)

    assert await primary.authorizations_for(body["payment_id"]) == []
    problem_of(await pay(billing), 409, "payment-abandoned")


async def _settled(app: FastAPI, key: str) -> bool:
    async with app.state.uow_factory() as uow:
        record = await uow.idempotency_keys.get(key)
    assert record is not None
    return bool(record.settled and record.empty_lookups == 2)
