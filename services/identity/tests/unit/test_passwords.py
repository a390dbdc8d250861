"""Argon2id password hashes: a match, a mismatch, and nobody's account."""

from __future__ import annotations

import pytest

from identity.adapters.passwords import Argon2Passwords


@pytest.fixture(scope="module")
def passwords() -> Argon2Passwords:
    return Argon2Passwords(time_cost=1, memory_cost_kib=32)


async def test_the_password_hashed_verifies_and_another_does_not(
    passwords: Argon2Passwords,
) -> None:
    hashed = await passwords.hash("sesame-opens-the-souk")

    assert hashed.startswith("$argon2id$")
    assert "sesame" not in hashed
    assert await passwords.verify(hashed, "sesame-opens-the-souk")
    assert not await passwords.verify(hashed, "sesame-opens-the-soup")


async def test_verifying_without_an_account_fails_whatever_the_password(
    passwords: Argon2Passwords,
) -> None:
    assert not await passwords.verify(None, "no account has this password")
    assert not await passwords.verify(None, "sesame-opens-the-souk")


async def test_a_damaged_hash_verifies_nothing(passwords: Argon2Passwords) -> None:
    assert not await passwords.verify("$argon2id$damaged", "sesame-opens-the-souk")
