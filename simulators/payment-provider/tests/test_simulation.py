"""Latency, errors and outages, configured at start and changed while the provider runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient

from payment_provider.app import create_app
from payment_provider.settings import ProviderSettings

if TYPE_CHECKING:
    import pytest
    from httpx import Response

CHARGE: dict[str, Any] = {
    "amount": {"amount": 1299, "currency": "EUR"},
    "card_token": "tok_ok",
    "reference": "payment-1",
}


def authorize(client: TestClient, key: str = "key-1") -> Response:
    return client.post("/v1/authorizations", json=CHARGE, headers={"Idempotency-Key": key})


def simulate(client: TestClient, **controls: Any) -> dict[str, Any]:
    response = client.put("/v1/simulation", json=controls)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_provider_starts_well_behaved(client: TestClient) -> None:
    assert client.get("/v1/simulation").json() == {
        "latency_ms": 0,
        "error_rate": 0.0,
        "outage": False,
    }


def test_during_an_outage_every_business_call_is_a_503_with_retry_after(
    client: TestClient,
) -> None:
    authorization_id = authorize(client).json()["id"]

    simulate(client, outage=True)

    answers = [
        authorize(client, key="key-2"),
        client.get(f"/v1/authorizations/{authorization_id}"),
        client.post(f"/v1/authorizations/{authorization_id}/capture"),
    ]
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["type"] == "https://souk.dev/problems/provider-unavailable"
    assert client.get("/healthz").status_code == 200


def test_an_outage_ended_at_run_time_lets_calls_through_again(client: TestClient) -> None:
    simulate(client, outage=True)
    assert authorize(client).status_code == 503

    simulate(client, outage=False)

    assert authorize(client).status_code == 201


def test_an_error_rate_of_one_fails_every_call(client: TestClient) -> None:
    simulate(client, error_rate=1.0)

    assert {authorize(client, key=f"key-{n}").status_code for n in range(10)} == {503}


def test_an_error_rate_of_one_half_fails_some_calls_and_not_others(client: TestClient) -> None:
    simulate(client, error_rate=0.5)

    assert {authorize(client, key=f"key-{n}").status_code for n in range(100)} == {201, 503}


def test_a_failed_call_is_not_remembered_so_its_retry_can_succeed(client: TestClient) -> None:
    simulate(client, error_rate=1.0)
    assert authorize(client).status_code == 503

    simulate(client, error_rate=0.0)

    assert authorize(client).status_code == 201


def test_latency_delays_each_business_call_by_at_least_the_configured_time(
    client: TestClient,
) -> None:
    simulate(client, latency_ms=200)

    started = time.monotonic()
    response = authorize(client)
    elapsed = time.monotonic() - started

    assert response.status_code == 201
    assert elapsed >= 0.2


def test_the_simulation_controls_answer_at_once_whatever_the_latency(client: TestClient) -> None:
    simulate(client, latency_ms=2000)

    started = time.monotonic()
    client.get("/v1/simulation")

    assert time.monotonic() - started < 1.5


def test_a_put_sets_the_whole_simulation_and_fields_left_out_return_to_their_defaults(
    client: TestClient,
) -> None:
    simulate(client, latency_ms=50, error_rate=0.25, outage=True)

    assert simulate(client, latency_ms=10) == {"latency_ms": 10, "error_rate": 0.0, "outage": False}


def test_controls_out_of_range_are_a_422_problem(client: TestClient) -> None:
    for controls in ({"error_rate": 1.5}, {"latency_ms": -1}, {"outage": "maybe"}, {"x": 1}):
        response = client.put("/v1/simulation", json=controls)
        assert response.status_code == 422, controls


def test_the_defaults_come_from_the_variables_of_the_service_it_runs_as(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMENT_BACKUP_LATENCY_MS", "5")
    monkeypatch.setenv("PAYMENT_BACKUP_OUTAGE", "true")
    monkeypatch.setenv("PAYMENT_BACKUP_PORT", "9123")

    settings = ProviderSettings.for_service("payment-backup")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/simulation").json()["outage"] is True
        assert authorize(client).status_code == 503
        assert simulate(client) == {"latency_ms": 5, "error_rate": 0.0, "outage": True}

    assert (settings.service, settings.port) == ("payment-backup", 9123)


def test_a_restarted_provider_has_forgotten_every_authorization(
    client: TestClient, settings: ProviderSettings
) -> None:
    authorization_id = authorize(client).json()["id"]

    with TestClient(create_app(settings)) as restarted:
        response = restarted.get(f"/v1/authorizations/{authorization_id}")

    assert response.status_code == 404
