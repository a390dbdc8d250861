"""Signing customers up, in and out: the OAuth 2 code flow with PKCE, as a confidential client.

The browser only ever carries the session cookie; the code is exchanged, and the tokens
kept and refreshed, here. Signing in rotates the session, so an id planted in a browser
before sign-in is worth nothing after it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from bff_web.domain.errors import SignInFailed, SignInRequired
from bff_web.service_layer.ports import Authorization
from chassis import get_logger
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from bff_web.domain.session import Session
    from bff_web.service_layer.ports import Identity, SessionStore

# What the storefront asks for on the customer's behalf: reading and placing their orders.
CUSTOMER_SCOPES = ("orders:read", "orders:write")

_log = get_logger("bff_web.accounts")


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The storefront as identity knows it: its id, where identity is, where to come back."""

    client_id: str
    authorize_url: str
    redirect_uri: str


def s256_challenge(code_verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def safe_return_path(candidate: str | None) -> str:
    """A path on this site to go back to after sign-in; anything else (another site) is '/'."""
    if not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return "/"
    return candidate


def begin_sign_in(session: Session, client: OAuthClient, return_to: str | None) -> str:
    """Remember a new sign-in in the session; the URL of identity's sign-in page for it."""
    query = urlencode(_authorization_request(session, client, return_to))
    return f"{client.authorize_url}?{query}"


def _authorization_request(
    session: Session, client: OAuthClient, return_to: str | None
) -> dict[str, str]:
    pending = session.begin_sign_in(safe_return_path(return_to))
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": " ".join(CUSTOMER_SCOPES),
        "state": pending.state,
        "code_challenge": s256_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
    }


async def sign_up_and_in(
    session: Session,
    *,
    email: str,
    password: str,
    client: OAuthClient,
    issuer: str,
    identity: Identity,
    store: SessionStore,
    now: datetime,
    ttl: timedelta,
    within: float,
) -> Session:
    """Open the account, then sign the new customer in at once: the same code flow with
    PKCE and state as a sign-in, the credentials they just chose given to identity's
    authorization endpoint from here rather than typed a second time on its page.

    Returns the signed-in session (rotated). Raises SignUpRefused, or UpstreamFailure if
    identity did not answer the sign-up (the account may or may not be open); SignInFailed
    when the account is open but the sign-in did not complete within ``within`` seconds of
    the start (the caller then sends the browser to identity's sign-in page).
    """
    started = time.monotonic()
    await identity.register(email, password)
    parameters = _authorization_request(session, client, "/")
    await store.save(session)
    # Signing in is a courtesy on top of the account: it gets what is left of the budget, so
    # a slow identity sends the shopper to the sign-in page rather than past the gateway's
    # timeout with the account open and no answer.
    left = within - (time.monotonic() - started)
    if left <= 0:
        raise SignInFailed("no time was left to sign the new account in")
    try:
        async with asyncio.timeout(left):
            location = await identity.authorize(parameters, email, password)
            answer = dict(parse_qsl(urlsplit(location).query))
            if answer.get("iss", "").rstrip("/") != issuer or "code" not in answer:
                raise SignInFailed("identity's answer was not a code from our issuer")
            signed_in, _ = await finish_sign_in(
                session,
                code=answer["code"],
                state=answer.get("state", ""),
                client=client,
                identity=identity,
                store=store,
                now=now,
                ttl=ttl,
            )
    except TimeoutError as error:
        raise SignInFailed(
            f"identity took more than {within:g} s to sign the account in"
        ) from error
    except UpstreamFailure as failure:
        # The account is open (identity said so); only the sign-in did not complete.
        raise SignInFailed(f"the new account was not signed in: {failure}") from failure
    return signed_in


async def finish_sign_in(
    session: Session,
    *,
    code: str,
    state: str,
    client: OAuthClient,
    identity: Identity,
    store: SessionStore,
    now: datetime,
    ttl: timedelta,
) -> tuple[Session, str]:
    """Exchange the code for tokens and rotate the session; the new one and where to go next.

    Raises SignInFailed when the state is not this session's pending sign-in's (a forged or
    replayed callback) or identity refuses the code.
    """
    pending = session.pending_sign_in
    if pending is None or not hmac.compare_digest(pending.state, state):
        raise SignInFailed("this sign-in was not started from this browser, or has expired")
    # One use only: a replayed callback finds no pending sign-in.
    session.pending_sign_in = None
    await store.save(session)
    tokens = await identity.exchange(
        Authorization(
            code=code, code_verifier=pending.code_verifier, redirect_uri=client.redirect_uri
        ),
        now,
    )
    signed_in = session.signed_in_as(tokens, now, ttl)
    await store.save(signed_in)
    await store.delete(session.id)
    return signed_in, pending.return_to


class RefreshLocks:
    """One token refresh at a time per session in this process.

    Identity rotates refresh tokens and takes one used twice for a stolen copy: it revokes
    the whole grant. Two pages of one browser (two tabs, the order page's polling) that
    found the token stale together must not both refresh it: the second waits, then uses
    what the first stored.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}

    @asynccontextmanager
    async def one_at_a_time(self, session_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        self._holders[session_id] = self._holders.get(session_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            # The last one out forgets the lock: sessions come and go, the map must not grow.
            self._holders[session_id] -= 1
            if not self._holders[session_id]:
                del self._holders[session_id], self._locks[session_id]


async def access_token(
    session: Session,
    *,
    identity: Identity,
    store: SessionStore,
    refreshes: RefreshLocks,
    now: datetime,
    margin: timedelta,
) -> str:
    """The customer's access token, refreshed first if it is about to expire.

    Raises SignInRequired if the session has no customer, or identity no longer honours its
    refresh token (then the session forgets the tokens).
    """
    if session.tokens is None:
        raise SignInRequired("sign in to see this page")
    if not session.tokens.need_refresh(now, margin):
        return session.tokens.access_token
    async with refreshes.one_at_a_time(session.id):
        stored = await store.load(session.id, now)
        if stored is not None:
            # Another page of this browser may have refreshed them while this one waited.
            session.tokens = stored.tokens
        tokens = session.tokens
        if tokens is None:
            raise SignInRequired("your sign-in has ended")
        if not tokens.need_refresh(now, margin):
            return tokens.access_token
        if tokens.refresh_token is None:
            session.tokens = None
            await store.save(session)
            raise SignInRequired("your sign-in has expired")
        try:
            session.tokens = await identity.refresh(tokens.refresh_token, now)
        except SignInRequired:
            session.tokens = None
            await store.save(session)
            raise
        await store.save(session)
        return session.tokens.access_token


async def sign_out(session: Session, *, identity: Identity, store: SessionStore) -> bool:
    """Forget the session and revoke the customer's grant at identity; whether it was revoked.

    The session is forgotten even if identity cannot be reached: the browser is signed out
    either way and the tokens are gone from here; they then lapse on their own.
    """
    tokens = session.tokens
    await store.delete(session.id)
    if tokens is None or tokens.refresh_token is None:
        return True
    try:
        await identity.revoke(tokens.refresh_token)
    except UpstreamFailure as failure:
        _log.warning("revocation failed at sign-out", error=str(failure))
        return False
    return True
