"""The HTTP payment provider adapter against the real simulator, and what it sends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest
from fastapi import APIRouter, Request
from opentelemetry.sdk.trace import TracerProvider

import chassis
from billing.adapters.payment_providers import HttpPaymentProvider
from billing.service_layer.ports import (
    AuthorizationUnknown,
    ProviderApproval,
    ProviderDecline,
    ProviderRefused,
    ProviderUnreachable,
)
from chassis.requests import request_id_var
from contracts import Money

from .conftest import LoopbackServer, SimulatedProvider, free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ACCEPTED_CARD = "tok_ok"
DECLINING_CARD = "tok_decline"
EUROS = Money(1490, "EUR")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client_of(
    provider: SimulatedProvider, session: aiohttp.ClientSession, timeout: float = 0.5
) -> HttpPaymentProvider:
    return HttpPaymentProvider(provider.service, provider.url, session, timeout=timeout)


async def approval(client: HttpPaymentProvider, key: str = "payment-1:authorize") -> str:
    answer = await client.authorize(
        amount=EUROS, card_token=ACCEPTED_CARD, reference="payment-1", idempotency_key=key
    )
    assert isinstance(answer, ProviderApproval)
    return answer.reference


async def test_an_approval_names_the_authorization_and_a_decline_its_reason(
    primary: SimulatedProvider, session: aiohttp.ClientSession
) -> None:
    client = client_of(primary, session)

    reference = await approval(client)
    declined = await client.authorize(
        amount=EUROS, card_token=DECLINING_CARD, reference="payment-2", idempotency_key="k2"
    )

    assert (await primary.authorization(reference))["amount"] == {"amount": 1490, "currency": "EUR"}
    assert declined == ProviderDecline(reason="card_declined")


async def test_the_same_idempotency_key_gets_the_same_authorization(
    primary: SimulatedProvider, session: aiohttp.ClientSession
) -> None:
    client = client_of(primary, session)

    assert await approval(client) == await approval(client)


async def test_captures_voids_and_refunds_reach_the_provider(
    primary: SimulatedProvider, session: aiohttp.ClientSession
) -> None:
    client = client_of(primary, session)
    captured, voided = await approval(client, "a"), await approval(client, "b")

    await client.capture(captured, idempotency_key="a:capture")
    await client.refund(captured, idempotency_key="a:refund")
    await client.void(voided, idempotency_key="b:void")

    assert (await primary.authorization(captured))["status"] == "refunded"
    assert (await primary.authorization(voided))["status"] == "voided"


async def test_an_unknown_authorization_and_a_refused_change_are_told_apart(
    primary: SimulatedProvider, session: aiohttp.ClientSession
) -> None:
    client = client_of(primary, session)
    reference = await approval(client)

    with pytest.raises(AuthorizationUnknown):
        await client.capture("auth_unknown", idempotency_key="x")
    with pytest.raises(ProviderRefused):
        await client.refund(reference, idempotency_key="y")


@pytest.mark.parametrize("controls", [{"outage": True}, {"error_rate": 1.0}])
async def test_a_provider_answering_503_is_unreachable(
    primary: SimulatedProvider, session: aiohttp.ClientSession, controls: dict[str, object]
) -> None:
    await primary.simulate(**controls)

    with pytest.raises(ProviderUnreachable):
        await approval(client_of(primary, session))


async def test_a_provider_slower_than_the_timeout_is_unreachable(
    primary: SimulatedProvider, session: aiohttp.ClientSession
) -> None:
    await primary.simulate(latency_ms=400)

    with pytest.raises(ProviderUnreachable, match=r"did not answer within 0\.1s"):
        await approval(client_of(primary, session, timeout=0.1))


async def test_a_provider_that_is_not_running_is_unreachable(
    session: aiohttp.ClientSession,
) -> None:
    nobody = HttpPaymentProvider(
        "payment-primary", f"http://127.0.0.1:{free_port()}", session, timeout=0.5
    )

    with pytest.raises(ProviderUnreachable):
        await approval(nobody)


async def test_every_call_carries_the_request_id_trace_context_and_idempotency_key(
    session: aiohttp.ClientSession,
) -> None:
    seen: list[dict[str, str]] = []
    router = APIRouter()

    @router.post("/v1/authorizations/{authorization_id}/capture")
    async def capture(request: Request) -> dict[str, str]:
        seen.append(dict(request.headers))
        return {}

    recorder = LoopbackServer()
    await recorder.start(
        chassis.create_app(
            chassis.ServiceSettings(service="recorder"), title="recorder", routers=[router]
        )
    )
    token = request_id_var.set("billing-request-42")
    try:
        with TracerProvider().get_tracer("billing").start_as_current_span("capture"):
            await HttpPaymentProvider("recorder", recorder.url, session, timeout=0.5).capture(
                "auth_1", idempotency_key="payment-1:capture"
            )
    finally:
        request_id_var.reset(token)
        await recorder.stop()

    assert seen[0]["x-request-id"] == "billing-request-42"
    assert seen[0]["traceparent"].startswith("00-")
    assert seen[0]["idempotency-key"] == "payment-1:capture"
