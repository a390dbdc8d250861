"""Opening an account, and signing in with it at the authorize step."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .conftest import AMINA, Pkce, redirect_parameters, sign_in

if TYPE_CHECKING:
    import httpx

PROBLEM = "application/problem+json"


async def test_a_new_account_is_answered_with_its_id_and_address_but_never_its_password(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.post(
        "/users", json={"email": "  Amina@Example.com ", "password": AMINA[1]}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email"}
    assert body["email"] == "amina@example.com"
    assert AMINA[1] not in response.text


async def test_an_address_already_registered_is_a_conflict_whatever_its_case(
    identity: httpx.AsyncClient, amina: str
) -> None:
    response = await identity.post(
        "/users", json={"email": "AMINA@example.com", "password": "another-long-password"}
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/email-taken")


@pytest.mark.parametrize("password", ["", "short", "aaaaaaaaaaaa", "amina@example.com"])
async def test_an_empty_short_or_guessable_password_is_refused(
    identity: httpx.AsyncClient, password: str
) -> None:
    response = await identity.post(
        "/users", json={"email": "amina@example.com", "password": password}
    )

    assert response.status_code == 422
    assert response.json()["type"].endswith("/weak-password")


async def test_text_that_is_not_an_email_address_is_refused(identity: httpx.AsyncClient) -> None:
    response = await identity.post("/users", json={"email": "amina", "password": AMINA[1]})

    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-email")


async def test_a_registered_user_signs_in_and_is_sent_back_to_the_client_with_a_code(
    identity: httpx.AsyncClient, amina: str
) -> None:
    response = await sign_in(identity, Pkce())

    parameters = redirect_parameters(response)
    assert response.headers["location"].startswith("http://127.0.0.1:8765/callback?")
    assert parameters["code"]
    assert parameters["state"] == "xyz-123"
    assert parameters["iss"] == "http://souk.test"


@pytest.mark.parametrize(
    "credentials",
    [(AMINA[0], "not-her-password"), ("nobody@example.com", AMINA[1])],
    ids=["wrong password", "unknown address"],
)
async def test_wrong_credentials_show_the_sign_in_form_again_and_give_no_code(
    identity: httpx.AsyncClient, amina: str, credentials: tuple[str, str]
) -> None:
    response = await sign_in(identity, Pkce(), credentials)

    assert response.status_code == 401
    assert "the email address or the password is wrong" in response.text
    assert "location" not in response.headers
    assert credentials[1] not in response.text


async def test_passwords_never_reach_the_logs(
    identity: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await identity.post("/users", json={"email": AMINA[0], "password": AMINA[1]})
    await sign_in(identity, Pkce(), (AMINA[0], "a-wrong-guess-123"))

    captured = capsys.readouterr()
    assert AMINA[1] not in captured.out + captured.err
    assert "a-wrong-guess-123" not in captured.out + captured.err
