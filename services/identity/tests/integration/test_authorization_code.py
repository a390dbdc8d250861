"""The authorization code flow with PKCE, driven without a browser."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from identity.service_layer.throttle import SignInThrottle, TooManySignInAttempts

from .conftest import (
    AMINA,
    CLI,
    WEB_CALLBACK,
    Clock,
    Pkce,
    authorize_parameters,
    code_for,
    exchange,
    redirect_parameters,
    sign_in,
    token,
)
from .validation import published_keys, validated_claims

if TYPE_CHECKING:
    import httpx


async def test_the_authorize_step_shows_a_sign_in_form_naming_the_client_and_scopes(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.get("/oauth/authorize", params=authorize_parameters(Pkce()))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Souk shop front" in response.text
    assert "see your orders" in response.text
    assert "place and cancel orders for you" in response.text
    assert response.headers["x-frame-options"] == "DENY"


async def test_a_signed_in_user_gets_tokens_for_the_client_by_code_and_pkce(
    identity: httpx.AsyncClient, amina: str
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)

    response = await exchange(identity, code, pkce)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"]
    assert body["scope"] == "orders:read orders:write"
    claims = validated_claims(body["access_token"], await published_keys(identity))
    assert claims["sub"] == amina
    assert claims["client_id"] == "souk-web"


async def test_a_code_verifier_that_does_not_match_the_challenge_is_refused(
    identity: httpx.AsyncClient, amina: str
) -> None:
    code = await code_for(identity, Pkce())

    response = await exchange(identity, code, Pkce())

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_a_code_redeemed_without_any_verifier_is_refused(
    identity: httpx.AsyncClient, amina: str
) -> None:
    code = await code_for(identity, Pkce())

    response = await token(
        identity, grant_type="authorization_code", code=code, redirect_uri=WEB_CALLBACK
    )

    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "overrides",
    [{"code_challenge_method": "plain"}, {"code_challenge_method": "", "code_challenge": ""}],
    ids=["plain", "no challenge"],
)
async def test_an_authorize_request_without_s256_pkce_is_sent_back_as_invalid_request(
    identity: httpx.AsyncClient, overrides: dict[str, str]
) -> None:
    response = await identity.get(
        "/oauth/authorize", params=authorize_parameters(Pkce(), **overrides)
    )

    parameters = redirect_parameters(response)
    assert parameters["error"] == "invalid_request"
    assert parameters["state"] == "xyz-123"
    assert "code" not in parameters


async def test_a_scope_beyond_the_clients_is_sent_back_as_invalid_scope(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.get(
        "/oauth/authorize", params=authorize_parameters(Pkce(), scope="catalog:write")
    )

    assert redirect_parameters(response)["error"] == "invalid_scope"


async def test_a_reused_code_is_refused_and_the_tokens_it_gave_are_revoked(
    identity: httpx.AsyncClient, amina: str
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)
    first = (await exchange(identity, code, pkce)).json()

    again = await exchange(identity, code, pkce)

    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    refresh = await token(
        identity, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refresh.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://evil.example/callback",
        "http://127.0.0.1:8765/callback/",
        "http://127.0.0.1:8765/callback?next=/",
    ],
)
async def test_a_redirect_uri_not_registered_exactly_is_refused_without_redirecting(
    identity: httpx.AsyncClient, redirect_uri: str
) -> None:
    response = await identity.get(
        "/oauth/authorize", params=authorize_parameters(Pkce(), redirect_uri=redirect_uri)
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.json()["type"].endswith("/invalid-authorization-request")


async def test_an_unknown_client_is_refused_without_redirecting(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.get(
        "/oauth/authorize", params=authorize_parameters(Pkce(), client_id="nobody")
    )

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_the_token_request_must_name_the_same_redirect_uri(
    identity: httpx.AsyncClient, amina: str
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)

    response = await token(
        identity,
        grant_type="authorization_code",
        code=code,
        redirect_uri="http://127.0.0.1:8765/other",
        code_verifier=pkce.verifier,
    )

    assert response.json()["error"] == "invalid_grant"


async def test_a_code_expires_after_a_minute(
    identity: httpx.AsyncClient, amina: str, clock: Clock
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)

    clock.advance(61)

    assert (await exchange(identity, code, pkce)).json()["error"] == "invalid_grant"


async def test_a_code_issued_to_one_client_is_refused_to_another(
    identity: httpx.AsyncClient, amina: str
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)

    response = await token(
        identity,
        CLI,
        grant_type="authorization_code",
        code=code,
        redirect_uri=WEB_CALLBACK,
        code_verifier=pkce.verifier,
    )

    assert response.json()["error"] == "invalid_grant"


async def test_of_two_racing_exchanges_of_one_code_at_most_one_gets_tokens(
    identity: httpx.AsyncClient, amina: str
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)

    answers = await asyncio.gather(*(exchange(identity, code, pkce) for _ in range(2)))

    assert sorted(answer.status_code == 200 for answer in answers) == [False, True]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_repeated_parameter_with_a_foreign_redirect_uri_is_refused_without_redirecting(
    identity: httpx.AsyncClient, method: str
) -> None:
    parameters = [
        ("client_id", "souk-web"),
        ("client_id", "another"),
        ("redirect_uri", "https://evil.example/phish"),
        ("response_type", "code"),
    ]
    if method == "GET":
        response = await identity.get("/oauth/authorize", params=parameters)
    else:
        response = await identity.request(
            "POST",
            "/oauth/authorize",
            content="client_id=souk-web&client_id=another&redirect_uri=https%3A%2F%2Fevil.example"
            "%2Fphish&response_type=code",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_used_code_presented_by_another_client_does_not_revoke_its_grant(
    identity: httpx.AsyncClient, amina: str
) -> None:
    pkce = Pkce()
    code = await code_for(identity, pkce)
    first = (await exchange(identity, code, pkce)).json()

    stranger = await token(
        identity,
        auth=CLI,
        grant_type="authorization_code",
        code=code,
        redirect_uri=WEB_CALLBACK,
        code_verifier=pkce.verifier,
    )

    assert stranger.status_code == 400
    assert stranger.json()["error"] == "invalid_grant"
    refresh = await token(
        identity, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refresh.status_code == 200, refresh.text


async def test_a_user_who_denies_is_sent_back_with_access_denied_and_no_code(
    identity: httpx.AsyncClient,
) -> None:
    form = {**authorize_parameters(Pkce()), "decision": "deny"}  # no credentials needed

    response = await identity.post("/oauth/authorize", data=form)

    parameters = redirect_parameters(response)
    assert parameters["error"] == "access_denied"
    assert parameters["state"] == form["state"]
    assert "code" not in parameters


async def test_after_five_failed_sign_ins_even_the_right_password_waits(
    identity: httpx.AsyncClient, amina: str, clock: Clock
) -> None:
    email, password = AMINA
    failures = [
        (await sign_in(identity, Pkce(), (email, "not-her-password"))).status_code for _ in range(5)
    ]

    throttled = await sign_in(identity, Pkce(), (email.upper(), password))

    assert failures == [401] * 5
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60
    assert "too many failed sign-ins" in throttled.text
    clock.advance(15 * 60)
    assert (await sign_in(identity, Pkce())).status_code == 302


async def test_failures_on_one_account_leave_the_others_alone_and_a_success_forgives(
    identity: httpx.AsyncClient, amina: str
) -> None:
    email, _ = AMINA
    for _ in range(4):
        await sign_in(identity, Pkce(), (email, "not-her-password"))
    assert (await sign_in(identity, Pkce())).status_code == 302  # forgives the four

    for _ in range(4):
        await sign_in(identity, Pkce(), (email, "not-her-password"))
    assert (await sign_in(identity, Pkce())).status_code == 302
    stranger = await sign_in(identity, Pkce(), ("omar@example.com", "whatever-it-is"))
    assert stranger.status_code == 401


async def test_a_failed_sign_in_keeps_the_email_escaped_in_the_form(
    identity: httpx.AsyncClient,
) -> None:
    response = await sign_in(identity, Pkce(), ('"><script>x</script>@example.com', "pw-pw-pw"))

    assert response.status_code == 401
    assert "<script>x</script>" not in response.text
    assert "&lt;script&gt;" in response.text


async def test_a_stranger_failing_on_purpose_does_not_lock_the_owner_out(
    identity: httpx.AsyncClient, elsewhere: httpx.AsyncClient, amina: str
) -> None:
    email, _ = AMINA
    # The attacker, at another address, fails twenty times on Amina's account.
    attempts = [
        (await sign_in(elsewhere, Pkce(), (email, "guess-guess-guess"))).status_code
        for _ in range(20)
    ]

    assert attempts[:5] == [401] * 5
    assert set(attempts[5:]) == {429}
    # Amina, at her own address, signs in at once.
    assert (await sign_in(identity, Pkce())).status_code == 302


async def test_each_further_miss_doubles_the_wait(
    identity: httpx.AsyncClient, amina: str, clock: Clock
) -> None:
    email, _ = AMINA
    waits = []
    for _ in range(5):
        await sign_in(identity, Pkce(), (email, "not-her-password"))
    for _ in range(4):
        throttled = await sign_in(identity, Pkce(), (email, "not-her-password"))
        waits.append(int(throttled.headers["Retry-After"]))
        clock.advance(waits[-1])
        assert (await sign_in(identity, Pkce(), (email, "not-her-password"))).status_code == 401

    assert waits == [1, 2, 4, 8]


async def test_a_flood_of_other_emails_does_not_wipe_a_victims_count() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock, max_entries=100)
    for _ in range(8):
        throttle.failed("amina@example.com", "203.0.113.9")
    for n in range(1000):  # one miss each: cheap to send, and they fill the table
        throttle.failed(f"someone-{n}@example.com", "203.0.113.9")

    with pytest.raises(TooManySignInAttempts):
        throttle.check("amina@example.com", "203.0.113.9")
