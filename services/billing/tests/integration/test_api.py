"""Billing's HTTP API against two real payment provider simulators."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from billing.app import create_app
from billing.settings import BillingSettings

from .conftest import PROVIDER_TIMEOUT

if TYPE_CHECKING:
    from pathlib import Path

    from httpx import AsyncClient, Response

    from .conftest import SimulatedProvider

PROBLEM = "application/problem+json"
DECLINING_CARD = "tok_decline"

SAFFRON_ORDER: dict[str, Any] = {
    "order_id": "order-1",
    "amount": {"amount": 1490, "currency": "EUR"},
    "card_token": "tok_ok",
}


def problem_of(response: Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://souk.dev/problems/{problem_type}"
    assert body["status"] == status
    return body


async def pay(billing: AsyncClient, key: str = "key-1", **changes: Any) -> Response:
    return await billing.post(
        "/payments", json={**SAFFRON_ORDER, **changes}, headers={"Idempotency-Key": key}
    )


async def paid(billing: AsyncClient, key: str = "key-1", **changes: Any) -> dict[str, Any]:
    response = await pay(billing, key, **changes)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_payment_is_authorized_by_the_primary_then_captured_there(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    response = await pay(billing)

    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment == {
        "id": payment["id"],
        "order_id": "order-1",
        "customer_id": None,
        "status": "AUTHORIZED",
        "amount": {"amount": 1490, "currency": "EUR"},
        "provider": "payment-primary",
        "provider_reference": payment["provider_reference"],
        "decline_reason": None,
        "created_at": payment["created_at"],
    }
    assert response.headers["location"].endswith(f"/payments/{payment['id']}")

    captured = await billing.post(f"/payments/{payment['id']}/capture")

    assert (captured.status_code, captured.json()["status"]) == (200, "CAPTURED")
    at_provider = await primary.authorization(payment["provider_reference"])
    assert (at_provider["status"], at_provider["reference"]) == ("captured", payment["id"])
    assert (await billing.get(f"/payments/{payment['id']}")).json() == captured.json()


async def test_a_declined_card_is_a_declined_payment_and_the_backup_is_not_asked(
    billing: AsyncClient, backup: SimulatedProvider
) -> None:
    await backup.simulate(outage=True)  # Asking it would fail loudly.

    response = await pay(billing, card_token=DECLINING_CARD)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["decline_reason"], body["provider"]) == (
        "DECLINED",
        "card_declined",
        "payment-primary",
    )
    assert body["provider_reference"] is None
    problem_of(await billing.post(f"/payments/{body['id']}/capture"), 409, "payment-state-conflict")


async def test_during_a_primary_outage_the_backup_authorizes_and_later_captures(
    billing: AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    await primary.simulate(outage=True)

    payment = await paid(billing)
    await primary.simulate(outage=False)
    captured = await billing.post(f"/payments/{payment['id']}/capture")

    assert payment["provider"] == "payment-backup"
    assert captured.json()["status"] == "CAPTURED"
    assert (await backup.authorization(payment["provider_reference"]))["status"] == "captured"


async def test_a_primary_that_is_not_running_is_passed_over_for_the_backup(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    await primary.stop()

    payment = await paid(billing)

    assert (payment["status"], payment["provider"]) == ("AUTHORIZED", "payment-backup")


async def test_a_primary_slower_than_the_timeout_is_not_abandoned_for_the_backup(
    billing: AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    # The primary may authorize after billing stopped waiting: asking the backup as well
    # could hold the amount twice on the customer's card.
    await primary.simulate(latency_ms=int((PROVIDER_TIMEOUT + 1.0) * 1000))

    body = problem_of(await pay(billing), 503, "payment-outcome-unknown")

    assert body["provider"] == "payment-primary"
    payment_id = body["payment_id"]
    assert (await billing.get("/payments", params={"order_id": "order-1"})).json() == []
    held = []
    for _ in range(100):  # the slow primary authorizes after billing stopped waiting
        if held := await primary.authorizations_for(payment_id):
            break
        await asyncio.sleep(0.05)
    assert len(held) == 1
    assert await backup.authorizations_for(payment_id) == []

    await primary.simulate(latency_ms=0)
    retried = await pay(billing)

    assert (retried.status_code, retried.json()["provider"]) == (201, "payment-primary")
    # The retry learned what the primary did: the same authorization, not a second one.
    assert retried.json()["id"] == payment_id
    assert retried.json()["provider_reference"] == held[0]["id"]
    assert len(await primary.authorizations_for(payment_id)) == 1
    assert await backup.authorizations_for(payment_id) == []


async def test_a_retry_after_an_unknown_outcome_never_fails_over(
    billing: AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    await primary.simulate(latency_ms=int((PROVIDER_TIMEOUT + 1.0) * 1000))
    problem_of(await pay(billing), 503, "payment-outcome-unknown")

    await primary.simulate(latency_ms=0, outage=True)
    body = problem_of(await pay(billing), 503, "payment-outcome-unknown")

    assert body["provider"] == "payment-primary"
    assert (await billing.get("/payments", params={"order_id": "order-1"})).json() == []


async def test_with_both_providers_down_it_is_a_503_and_nothing_is_authorized(
    billing: AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    await primary.simulate(outage=True)
    await backup.stop()

    body = problem_of(await pay(billing), 503, "payment-provider-unavailable")

    assert body["providers"] == ["payment-primary", "payment-backup"]
    assert (await pay(billing)).headers["retry-after"] == "2"
    assert (await billing.get("/payments", params={"order_id": "order-1"})).json() == []


async def test_a_payment_refused_for_an_outage_goes_through_when_retried_with_its_key(
    billing: AsyncClient, primary: SimulatedProvider, backup: SimulatedProvider
) -> None:
    await primary.simulate(error_rate=1.0)
    await backup.simulate(error_rate=1.0)
    problem_of(await pay(billing), 503, "payment-provider-unavailable")

    await primary.simulate(error_rate=0.0)
    retried = await pay(billing)

    assert (retried.status_code, retried.json()["status"]) == (201, "AUTHORIZED")


async def test_a_replay_with_the_same_key_and_body_returns_the_same_payment(
    billing: AsyncClient,
) -> None:
    first = await paid(billing)

    again = await pay(billing)

    assert (again.status_code, again.json()) == (200, first)
    listed = (await billing.get("/payments", params={"order_id": "order-1"})).json()
    assert [p["id"] for p in listed] == [first["id"]]


async def test_a_replayed_decline_is_the_same_declined_payment(billing: AsyncClient) -> None:
    first = await paid(billing, card_token=DECLINING_CARD)

    again = await pay(billing, card_token=DECLINING_CARD)

    assert (again.status_code, again.json()) == (200, first)


async def test_a_key_reused_for_another_payment_is_a_422_problem(billing: AsyncClient) -> None:
    await paid(billing)

    response = await pay(billing, amount={"amount": 9990, "currency": "EUR"})

    problem_of(response, 422, "idempotency-key-reused")


async def test_a_payment_without_an_idempotency_key_is_a_400_problem(
    billing: AsyncClient,
) -> None:
    response = await billing.post("/payments", json=SAFFRON_ORDER)

    problem_of(response, 400, "idempotency-key-required")
    assert (await billing.get("/payments", params={"order_id": "order-1"})).json() == []


async def test_two_requests_with_one_key_at_once_charge_once(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    await primary.simulate(latency_ms=300)

    answers = await asyncio.gather(pay(billing), pay(billing))

    assert sorted(a.status_code for a in answers) == [201, 409]
    in_flight = next(a for a in answers if a.status_code == 409)
    problem_of(in_flight, 409, "idempotency-key-in-flight")
    assert in_flight.headers["retry-after"] == "1"
    assert len((await billing.get("/payments", params={"order_id": "order-1"})).json()) == 1


async def test_a_captured_payment_is_refunded_once_however_often_asked(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    payment = await paid(billing)
    await billing.post(f"/payments/{payment['id']}/capture")

    refunds = [await billing.post(f"/payments/{payment['id']}/refund") for _ in range(2)]

    assert [(r.status_code, r.json()["status"]) for r in refunds] == [(200, "REFUNDED")] * 2
    assert (await primary.authorization(payment["provider_reference"]))["status"] == "refunded"


async def test_a_voided_payment_is_released_and_can_no_longer_be_captured(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    payment = await paid(billing)

    voids = [await billing.post(f"/payments/{payment['id']}/void") for _ in range(2)]
    capture = await billing.post(f"/payments/{payment['id']}/capture")

    assert [(v.status_code, v.json()["status"]) for v in voids] == [(200, "VOIDED")] * 2
    assert (await primary.authorization(payment["provider_reference"]))["status"] == "voided"
    body = problem_of(capture, 409, "payment-state-conflict")
    assert body["payment_status"] == "VOIDED"


async def test_an_uncaptured_payment_cannot_be_refunded(billing: AsyncClient) -> None:
    payment = await paid(billing)

    refund = await billing.post(f"/payments/{payment['id']}/refund")

    problem_of(refund, 409, "payment-state-conflict")


async def test_a_capture_while_the_authorizing_provider_is_down_is_a_503_and_changes_nothing(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    payment = await paid(billing)
    await primary.simulate(outage=True)

    problem_of(
        await billing.post(f"/payments/{payment['id']}/capture"),
        503,
        "payment-provider-unavailable",
    )

    assert (await billing.get(f"/payments/{payment['id']}")).json()["status"] == "AUTHORIZED"


async def test_after_a_provider_restart_its_payment_can_be_voided_but_not_captured(
    billing: AsyncClient, primary: SimulatedProvider
) -> None:
    payment = await paid(billing)
    await primary.restart()

    capture = await billing.post(f"/payments/{payment['id']}/capture")
    void = await billing.post(f"/payments/{payment['id']}/void")

    body = problem_of(capture, 409, "payment-authorization-lost")
    assert body["provider"] == "payment-primary"
    assert (void.status_code, void.json()["status"]) == (200, "VOIDED")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/payments/no-such-payment"),
        ("POST", "/payments/no-such-payment/capture"),
        ("POST", "/payments/no-such-payment/void"),
        ("POST", "/payments/no-such-payment/refund"),
    ],
)
async def test_an_unknown_payment_is_a_404_problem(
    billing: AsyncClient, method: str, path: str
) -> None:
    problem_of(await billing.request(method, path), 404, "payment-not-found")


@pytest.mark.parametrize(
    "change",
    [
        {"amount": {"amount": 0, "currency": "EUR"}},
        {"amount": {"amount": -100, "currency": "EUR"}},
        {"amount": {"amount": 14.90, "currency": "EUR"}},
        {"amount": {"amount": "1490", "currency": "EUR"}},
        {"amount": {"amount": 1490, "currency": "XYZ"}},
        {"card_token": "4242424242424242"},
        {"order_id": ""},
        {"customer_id": ""},
        {"customer_id": "c" * 101},
        {"extra": "field"},
    ],
)
async def test_an_invalid_payment_request_is_a_422_problem(
    billing: AsyncClient, change: dict[str, Any]
) -> None:
    problem_of(await pay(billing, **change), 422, "validation-error")


async def test_the_payments_of_an_order_are_listed_oldest_first(billing: AsyncClient) -> None:
    declined = await paid(billing, "key-1", card_token=DECLINING_CARD)
    authorized = await paid(billing, "key-2")
    await paid(billing, "key-3", order_id="order-2")

    listed = (await billing.get("/payments", params={"order_id": "order-1"})).json()

    assert [(p["id"], p["status"]) for p in listed] == [
        (declined["id"], "DECLINED"),
        (authorized["id"], "AUTHORIZED"),
    ]
    problem_of(await billing.get("/payments"), 422, "validation-error")


def test_billing_refuses_to_start_without_the_addresses_of_its_providers(tmp_path: Path) -> None:
    settings = BillingSettings(data_dir=tmp_path, upstreams={"payment-primary": ["http://p"]})

    with pytest.raises(LookupError, match="payment-backup"):
        create_app(settings)


async def test_the_openapi_document_describes_the_billing_api(billing: AsyncClient) -> None:
    document = (await billing.get("/openapi.json")).json()

    assert {
        "/payments",
        "/payments/{payment_id}",
        "/payments/{payment_id}/capture",
        "/payments/{payment_id}/void",
        "/payments/{payment_id}/refund",
    } <= document["paths"].keys()
    create = document["paths"]["/payments"]["post"]
    assert {"200", "201", "400", "409", "422", "503"} <= create["responses"].keys()
    assert "application/problem+json" in create["responses"]["503"]["content"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}


async def test_the_customer_a_request_names_is_kept_with_the_payment(
    billing: AsyncClient,
) -> None:
    payment = await paid(billing, customer_id="customer-7")

    assert payment["customer_id"] == "customer-7"
    fetched = await billing.get(f"/payments/{payment['id']}")
    assert fetched.json()["customer_id"] == "customer-7"
