"""The rules identity's model keeps: addresses, passwords, scopes, PKCE, codes and keys."""

# ruff: noqa: S106 - token fields and secrets in tests are fixtures, not credentials

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identity.domain.errors import InvalidEmail, InvalidGrant, InvalidScope, WeakPassword
from identity.domain.model import (
    AuthorizationCode,
    Client,
    Grant,
    KeyState,
    SigningKey,
    active_key,
    check_password_strength,
    format_scope,
    normalise_email,
    parse_scope,
    rotate,
    s256_challenge,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
# RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

SOUK_CLI = Client(
    client_id="souk-cli",
    name="Souk command line",
    secret_hash="$argon2id$...",
    scopes=frozenset({"catalog:write", "orders:read"}),
)


def code(**overrides: object) -> AuthorizationCode:
    values: dict[str, object] = {
        "code_hash": "c0de",
        "grant_id": "g-1",
        "client_id": "souk-web",
        "redirect_uri": "http://127.0.0.1:8765/callback",
        "code_challenge": CHALLENGE,
        "expires_at": NOW + timedelta(seconds=60),
    }
    return AuthorizationCode(**(values | overrides))  # type: ignore[arg-type]


def key(kid: str, state: KeyState) -> SigningKey:
    return SigningKey(kid=kid, alg="ES256", private_jwk={}, state=state, created_at=NOW)


def test_an_email_address_is_trimmed_and_lower_cased() -> None:
    assert normalise_email("  Amina@Example.COM ") == "amina@example.com"


@pytest.mark.parametrize("text", ["", "amina", "amina@", "@example.com", "a b@example.com"])
def test_text_without_the_shape_of_an_address_is_not_one(text: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(text)


@pytest.mark.parametrize("password", ["", "123456789", "x" * 257, "zzzzzzzzzzzz", "A@b.co.uk.xx"])
def test_short_overlong_repetitive_or_email_passwords_are_weak(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_strength(password, "a@b.co.uk.xx")


@pytest.mark.parametrize(
    "text", ["a\x00b@example.com", "amina\x07@example.com", "amina@exa\x00mple.com", "a@-x-.com"]
)
def test_an_address_with_control_characters_or_a_bad_domain_is_not_one(text: str) -> None:
    with pytest.raises(InvalidEmail):
        normalise_email(text)


@pytest.mark.parametrize(
    "password",
    ["1234567890", "password12", "qwertyuiop", "iloveyou123", "Password123!"],
)
def test_common_passwords_and_patterns_are_weak(password: str) -> None:
    # Long enough and varied enough, but in zxcvbn's lists or patterns.
    with pytest.raises(WeakPassword, match="too easy to guess"):
        check_password_strength(password, "amina@example.com")


def test_a_long_varied_password_is_strong_enough() -> None:
    check_password_strength("sesame-opens-the-souk", "amina@example.com")


def test_a_scope_parses_from_and_formats_to_sorted_space_separated_text() -> None:
    assert parse_scope(None) is None
    assert parse_scope("orders:read  catalog:write") == frozenset({"orders:read", "catalog:write"})
    assert format_scope(frozenset({"orders:read", "catalog:write"})) == "catalog:write orders:read"


def test_a_client_gets_what_it_asks_for_within_its_scopes_or_all_when_it_asks_nothing() -> None:
    assert SOUK_CLI.grant_scope(None) == SOUK_CLI.scopes
    assert SOUK_CLI.grant_scope(frozenset({"orders:read"})) == {"orders:read"}
    with pytest.raises(InvalidScope, match="orders:write"):
        SOUK_CLI.grant_scope(frozenset({"orders:read", "orders:write"}))


def test_the_s256_challenge_is_the_one_of_rfc_7636() -> None:
    assert s256_challenge(VERIFIER) == CHALLENGE


def test_a_code_accepts_its_own_verifier_only() -> None:
    code().check_verifier(VERIFIER)
    with pytest.raises(InvalidGrant):
        code().check_verifier(VERIFIER[:-1] + "l")
    with pytest.raises(InvalidGrant):
        code().check_verifier(None)
    with pytest.raises(InvalidGrant):
        code().check_verifier("too-short")


@pytest.mark.parametrize(
    ("client_id", "redirect_uri", "at"),
    [
        ("souk-cli", "http://127.0.0.1:8765/callback", NOW),
        ("souk-web", "http://127.0.0.1:8765/callback/", NOW),
        ("souk-web", None, NOW),
        ("souk-web", "http://127.0.0.1:8765/callback", NOW + timedelta(seconds=60)),
    ],
    ids=["another client", "another redirect", "no redirect", "expired"],
)
def test_a_code_is_redeemable_by_its_client_at_its_redirect_uri_in_time_only(
    client_id: str, redirect_uri: str | None, at: datetime
) -> None:
    code().check_redeemable("souk-web", "http://127.0.0.1:8765/callback", NOW)
    with pytest.raises(InvalidGrant):
        code().check_redeemable(client_id, redirect_uri, at)


def test_revoking_a_grant_keeps_the_first_moment_it_was_revoked() -> None:
    grant = Grant("g-1", "souk-web", "u-1", frozenset({"orders:read"}), NOW)

    grant.revoke(NOW)
    grant.revoke(NOW + timedelta(hours=1))

    assert grant.revoked
    assert grant.revoked_at == NOW


def test_rotating_promotes_the_next_key_retires_the_signer_and_adds_a_next_key() -> None:
    keys = [key("k1", KeyState.RETIRED), key("k2", KeyState.ACTIVE), key("k3", KeyState.NEXT)]

    rotate(keys, key("k4", KeyState.ACTIVE), NOW)

    assert [(k.kid, k.state) for k in keys] == [
        ("k1", KeyState.RETIRED),
        ("k2", KeyState.RETIRED),
        ("k3", KeyState.ACTIVE),
        ("k4", KeyState.NEXT),
    ]
    assert keys[1].retired_at == NOW
    assert active_key(keys).kid == "k3"


def test_a_retired_key_stays_published_for_as_long_as_its_tokens_live() -> None:
    retired = key("k1", KeyState.RETIRED)
    retired.retired_at = NOW
    kept = timedelta(minutes=11)

    assert key("k2", KeyState.NEXT).published(NOW + timedelta(days=365), kept)
    assert retired.published(NOW + kept - timedelta(seconds=1), kept)
    assert not retired.published(NOW + kept, kept)
