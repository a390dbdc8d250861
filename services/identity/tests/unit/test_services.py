"""The service layer on fakes: accounts, keys, and the authorization server's rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from identity.domain.errors import EmailTaken, InvalidGrant, WrongCredentials
from identity.domain.model import KeyState, s256_challenge
from identity.service_layer import accounts, keys
from identity.service_layer.oauth import AuthorizationRequest

from .conftest import NOW, SOUK_WEB
from .fakes import FakePasswords, FakeSigner

if TYPE_CHECKING:
    from identity.service_layer.oauth import AuthorizationServer

    from .fakes import FakeStore, FakeUnitOfWork

VERIFIER = "v" * 20 + "-erifier-of-forty-three-chars"
PASSWORD = "sesame-opens-the-souk"  # noqa: S105 - a test account's


async def test_a_registered_user_authenticates_with_their_password_only(
    uow: FakeUnitOfWork,
) -> None:
    amina = await accounts.register(uow, FakePasswords(), "Amina@example.com", PASSWORD, NOW)

    assert await accounts.authenticate(uow, FakePasswords(), "amina@example.com", PASSWORD) == amina
    with pytest.raises(WrongCredentials):
        await accounts.authenticate(uow, FakePasswords(), "amina@example.com", "wrong-password")
    with pytest.raises(WrongCredentials):
        await accounts.authenticate(uow, FakePasswords(), "not an address", PASSWORD)


async def test_an_address_registers_once(uow: FakeUnitOfWork) -> None:
    await accounts.register(uow, FakePasswords(), "amina@example.com", PASSWORD, NOW)

    with pytest.raises(EmailTaken):
        await accounts.register(uow, FakePasswords(), "AMINA@example.com", PASSWORD, NOW)


async def test_keys_start_as_one_signer_and_one_next_key_made_once(
    uow: FakeUnitOfWork, store: FakeStore
) -> None:
    await keys.ensure_keys(uow, FakeSigner(), NOW)
    await keys.ensure_keys(uow, FakeSigner(), NOW)

    states = sorted(key.state for key in store.signing_keys.values())
    assert states == [KeyState.ACTIVE, KeyState.NEXT]


async def test_a_rotation_signs_with_the_key_that_was_published_as_next(
    uow: FakeUnitOfWork, store: FakeStore, server: AuthorizationServer
) -> None:
    await keys.ensure_keys(uow, FakeSigner(), NOW)
    (upcoming,) = (key.kid for key in store.signing_keys.values() if key.state is KeyState.NEXT)

    await keys.rotate_keys(uow, FakeSigner(), NOW)
    code = await server.issue_code(_request(), "u-amina")
    tokens = await server.exchange_code(SOUK_WEB, code, SOUK_WEB.redirect_uris[0], VERIFIER)

    assert tokens.access_token.startswith(f"{upcoming}:u-amina:")
    assert len(store.signing_keys) == 3


async def test_a_reused_refresh_token_revokes_its_family(
    uow: FakeUnitOfWork, store: FakeStore, server: AuthorizationServer
) -> None:
    await keys.ensure_keys(uow, FakeSigner(), NOW)
    code = await server.issue_code(_request(), "u-amina")
    first = await server.exchange_code(SOUK_WEB, code, SOUK_WEB.redirect_uris[0], VERIFIER)
    assert first.refresh_token is not None
    second = await server.refresh(SOUK_WEB, first.refresh_token, None)
    assert second.refresh_token is not None

    with pytest.raises(InvalidGrant, match="already used"):
        await server.refresh(SOUK_WEB, first.refresh_token, None)

    assert all(grant.revoked for grant in store.grants.values())
    with pytest.raises(InvalidGrant, match="revoked"):
        await server.refresh(SOUK_WEB, second.refresh_token, None)


async def test_a_failed_exchange_leaves_the_code_unused(
    uow: FakeUnitOfWork, store: FakeStore, server: AuthorizationServer
) -> None:
    await keys.ensure_keys(uow, FakeSigner(), NOW)
    code = await server.issue_code(_request(), "u-amina")

    with pytest.raises(InvalidGrant):
        await server.exchange_code(SOUK_WEB, code, SOUK_WEB.redirect_uris[0], "x" * 43)

    assert [issued.used_at for issued in store.codes.values()] == [None]
    assert not any(grant.revoked for grant in store.grants.values())


def _request() -> AuthorizationRequest:
    return AuthorizationRequest(
        client=SOUK_WEB,
        redirect_uri=SOUK_WEB.redirect_uris[0],
        scope=SOUK_WEB.scopes,
        code_challenge=s256_challenge(VERIFIER),
        state=None,
    )
