"""Sign-in as a confidential client: state, PKCE, rotation, refresh and sign-out."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from bff_web.domain.errors import SignInFailed, SignInRequired
from bff_web.domain.session import CustomerTokens
from bff_web.service_layer import accounts
from bff_web.service_layer.accounts import OAuthClient

from .conftest import NOW, TTL

if TYPE_CHECKING:
    from bff_web.domain.session import Session

    from .fakes import FakeIdentity, FakeSessionStore

CLIENT = OAuthClient(
    client_id="bff-web",
    authorize_url="https://souk.test/oauth/authorize",
    redirect_uri="https://souk.test/auth/callback",
)
MARGIN = timedelta(seconds=60)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_the_sign_in_url_carries_the_sessions_state_and_the_challenge_of_its_verifier(
    session: Session,
) -> None:
    url = accounts.begin_sign_in(session, CLIENT, "/cart")
    assert url.startswith("https://souk.test/oauth/authorize?")
    query = query_of(url)
    pending = session.pending_sign_in
    assert pending is not None
    assert query["state"] == pending.state
    digest = hashlib.sha256(pending.code_verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pending.code_verifier not in url
    assert pending.return_to == "/cart"


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/cart", "/cart"),
        ("/?category=spices", "/?category=spices"),
        (None, "/"),
        ("", "/"),
        ("https://evil.test/", "/"),
        ("//evil.test/", "/"),
        ("/\\evil.test", "/"),
        ("cart", "/"),
    ],
)
def test_only_a_path_on_this_site_is_a_place_to_return_to(asked: str | None, kept: str) -> None:
    assert accounts.safe_return_path(asked) == kept


async def finish(
    session: Session, state: str, identity: FakeIdentity, store: FakeSessionStore
) -> tuple[Session, str]:
    return await accounts.finish_sign_in(
        session,
        code="the-code",
        state=state,
        client=CLIENT,
        identity=identity,
        store=store,
        now=NOW,
        ttl=TTL,
    )


async def test_the_callback_exchanges_the_code_with_the_verifier_and_rotates_the_session(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    accounts.begin_sign_in(session, CLIENT, "/cart")
    pending = session.pending_sign_in
    assert pending is not None
    signed_in, return_to = await finish(session, pending.state, identity, store)
    [authorization] = identity.exchanged
    assert authorization.code == "the-code"
    assert authorization.code_verifier == pending.code_verifier
    assert authorization.redirect_uri == CLIENT.redirect_uri
    assert return_to == "/cart"
    assert signed_in.signed_in
    assert set(store.sessions) == {signed_in.id}  # the pre-sign-in id is gone


async def test_a_callback_whose_state_is_not_the_sessions_exchanges_nothing(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    accounts.begin_sign_in(session, CLIENT, "/")
    with pytest.raises(SignInFailed):
        await finish(session, "forged", identity, store)
    assert identity.exchanged == []
    assert session.pending_sign_in is not None  # the real sign-in may still come back


async def test_a_callback_without_a_pending_sign_in_is_refused(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    with pytest.raises(SignInFailed):
        await finish(session, "any", identity, store)
    assert identity.exchanged == []


async def test_a_state_is_good_for_one_callback_only(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    accounts.begin_sign_in(session, CLIENT, "/")
    pending = session.pending_sign_in
    assert pending is not None
    identity.refuse = True
    with pytest.raises(SignInFailed):
        await finish(session, pending.state, identity, store)
    identity.refuse = False
    with pytest.raises(SignInFailed):
        await finish(session, pending.state, identity, store)
    assert identity.exchanged == []


def signed_in(session: Session, lifetime: timedelta) -> Session:
    session.tokens = CustomerTokens("access-0", "refresh-0", NOW + lifetime)
    return session


async def fresh_token(session: Session, identity: FakeIdentity, store: FakeSessionStore) -> str:
    return await accounts.access_token(
        session,
        identity=identity,
        store=store,
        refreshes=accounts.RefreshLocks(),
        now=NOW,
        margin=MARGIN,
    )


async def test_a_token_with_time_left_is_used_as_it_is(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    used = await fresh_token(signed_in(session, timedelta(minutes=5)), identity, store)
    assert used == "access-0"
    assert identity.refreshed == []


async def test_a_token_about_to_expire_is_refreshed_and_the_new_one_kept(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    used = await fresh_token(signed_in(session, timedelta(seconds=30)), identity, store)
    assert identity.refreshed == ["refresh-0"]
    assert used == "access-1"
    assert store.sessions[session.id].tokens == session.tokens
    assert session.tokens == CustomerTokens("access-1", "refresh-1", NOW + identity.lifetime)


async def test_a_refused_refresh_signs_the_session_out(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    identity.refuse = True
    with pytest.raises(SignInRequired):
        await fresh_token(signed_in(session, timedelta(seconds=0)), identity, store)
    assert session.tokens is None
    assert store.sessions[session.id].tokens is None


async def test_without_a_customer_there_is_no_token(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    with pytest.raises(SignInRequired):
        await fresh_token(session, identity, store)


async def test_sign_out_revokes_the_refresh_token_and_forgets_the_session(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    revoked = await accounts.sign_out(signed_in(session, TTL), identity=identity, store=store)
    assert revoked
    assert identity.revoked == ["refresh-0"]
    assert store.sessions == {}


async def test_sign_out_forgets_the_session_even_when_identity_is_unreachable(
    session: Session, identity: FakeIdentity, store: FakeSessionStore
) -> None:
    identity.unreachable = True
    revoked = await accounts.sign_out(signed_in(session, TTL), identity=identity, store=store)
    assert not revoked
    assert store.sessions == {}
