"""The simulated provider's API: authorizations, their lifecycle, and idempotent replays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response

PROBLEM = "application/problem+json"
DECLINING_CARD = "tok_decline"

CHARGE: dict[str, Any] = {
    "amount": {"amount": 1299, "currency": "EUR"},
    "card_token": "tok_ok",
    "reference": "payment-1",
}


def problem_of(response: Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://souk.dev/problems/{problem_type}"
    return body


def authorize(client: TestClient, key: str = "key-1", **changes: Any) -> Response:
    return client.post(
        "/v1/authorizations", json={**CHARGE, **changes}, headers={"Idempotency-Key": key}
    )


def test_an_accepted_card_is_authorized_for_the_amount(client: TestClient) -> None:
    response = authorize(client)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "id": body["id"],
        "status": "authorized",
        "amount": {"amount": 1299, "currency": "EUR"},
        "reference": "payment-1",
    }
    assert body["id"].startswith("auth_")
    assert client.get(f"/v1/authorizations/{body['id']}").json() == body


@pytest.mark.parametrize("token", ["tok_ok", "tok_visa_4242", "tok_X"])
def test_any_well_formed_token_but_the_declining_one_is_accepted(
    client: TestClient, token: str
) -> None:
    assert authorize(client, card_token=token).status_code == 201


def test_the_declining_test_card_is_declined_with_a_reason(client: TestClient) -> None:
    body = problem_of(authorize(client, card_token=DECLINING_CARD), 402, "card-declined")

    assert body["decline_reason"] == "card_declined"


@pytest.mark.parametrize("token", ["", "4242424242424242", "tok_", "tok_has space", "TOK_OK"])
def test_a_malformed_card_token_is_a_422_problem(client: TestClient, token: str) -> None:
    problem_of(authorize(client, card_token=token), 422, "validation-error")


@pytest.mark.parametrize("amount", [0, -100, 12.99, "1299"])
def test_an_amount_that_is_not_positive_minor_units_is_a_422_problem(
    client: TestClient, amount: object
) -> None:
    response = authorize(client, amount={"amount": amount, "currency": "EUR"})

    problem_of(response, 422, "validation-error")


def test_an_authorization_without_an_idempotency_key_is_refused(client: TestClient) -> None:
    problem_of(client.post("/v1/authorizations", json=CHARGE), 400, "idempotency-key-required")


def test_a_replay_with_the_same_key_returns_the_same_authorization(client: TestClient) -> None:
    first = authorize(client)
    again = authorize(client)

    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert authorize(client, key="key-2").json()["id"] != first.json()["id"]


def test_a_replayed_decline_is_declined_again(client: TestClient) -> None:
    authorize(client, card_token=DECLINING_CARD)

    problem_of(authorize(client, card_token=DECLINING_CARD), 402, "card-declined")


def test_the_same_key_for_another_request_is_a_422_problem(client: TestClient) -> None:
    authorize(client)

    response = authorize(client, amount={"amount": 5000, "currency": "EUR"})

    problem_of(response, 422, "idempotency-key-reused")


def test_an_authorization_is_captured_then_refunded(client: TestClient) -> None:
    authorization_id = authorize(client).json()["id"]

    captured = client.post(f"/v1/authorizations/{authorization_id}/capture")
    refunded = client.post(f"/v1/authorizations/{authorization_id}/refund")

    assert (captured.status_code, captured.json()["status"]) == (200, "captured")
    assert (refunded.status_code, refunded.json()["status"]) == (200, "refunded")


def test_an_authorization_that_is_voided_can_no_longer_be_captured(client: TestClient) -> None:
    authorization_id = authorize(client).json()["id"]

    voided = client.post(f"/v1/authorizations/{authorization_id}/void")
    capture = client.post(f"/v1/authorizations/{authorization_id}/capture")

    assert voided.json()["status"] == "voided"
    body = problem_of(capture, 409, "authorization-state-conflict")
    assert body["status_now"] == "voided"


def test_an_uncaptured_authorization_cannot_be_refunded(client: TestClient) -> None:
    authorization_id = authorize(client).json()["id"]

    problem_of(
        client.post(f"/v1/authorizations/{authorization_id}/refund"),
        409,
        "authorization-state-conflict",
    )


def test_a_capture_replayed_with_its_key_answers_as_the_first_time(client: TestClient) -> None:
    authorization_id = authorize(client).json()["id"]
    url = f"/v1/authorizations/{authorization_id}/capture"

    first = client.post(url, headers={"Idempotency-Key": "capture-1"})
    again = client.post(url, headers={"Idempotency-Key": "capture-1"})
    without_key = client.post(url)

    assert (again.status_code, again.json()) == (200, first.json())
    problem_of(without_key, 409, "authorization-state-conflict")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/authorizations/auth_unknown"),
        ("POST", "/v1/authorizations/auth_unknown/capture"),
        ("POST", "/v1/authorizations/auth_unknown/void"),
        ("POST", "/v1/authorizations/auth_unknown/refund"),
    ],
)
def test_an_unknown_authorization_is_a_404_problem(
    client: TestClient, method: str, path: str
) -> None:
    problem_of(client.request(method, path), 404, "authorization-not-found")


def test_the_openapi_document_describes_payments_and_the_simulation(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert {
        "/v1/authorizations",
        "/v1/authorizations/{authorization_id}",
        "/v1/authorizations/{authorization_id}/capture",
        "/v1/authorizations/{authorization_id}/void",
        "/v1/authorizations/{authorization_id}/refund",
        "/v1/simulation",
    } <= paths.keys()


def test_authorizations_can_be_found_by_the_merchants_reference(client: TestClient) -> None:
    for key, reference in (("k1", "pay-1"), ("k2", "pay-2"), ("k3", "pay-1")):
        response = client.post(
            "/v1/authorizations",
            headers={"Idempotency-Key": key},
            json={
                "amount": {"amount": 1299, "currency": "EUR"},
                "card_token": "tok_ok",
                "reference": reference,
            },
        )
        assert response.status_code == 201
    found = client.get("/v1/authorizations", params={"reference": "pay-1"}).json()
    assert [a["reference"] for a in found] == ["pay-1", "pay-1"]
    assert client.get("/v1/authorizations", params={"reference": "none"}).json() == []
    # Without a reference: the whole books, oldest first, each with where it stands.
    books = client.get("/v1/authorizations").json()
    assert [a["reference"] for a in books] == ["pay-1", "pay-2", "pay-1"]
    assert {a["status"] for a in books} == {"authorized"}
