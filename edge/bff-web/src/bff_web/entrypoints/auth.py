"""Sign-up, sign-in (and identity's callback), sign-out.

Sign-in happens on identity's own page: the browser goes there with the state and PKCE
challenge of this session's pending sign-in and comes back to ``/auth/callback`` with a
code, which is exchanged here, server-side, with the storefront's client secret.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from bff_web.domain.errors import SignInFailed, SignUpRefused
from bff_web.domain.session import Session
from bff_web.entrypoints.csrf import checked_form
from bff_web.entrypoints.errors import error_page
from bff_web.entrypoints.visits import Visit, VisitDep
from bff_web.service_layer import accounts
from chassis import get_logger

router = APIRouter(prefix="/auth", include_in_schema=False)

_log = get_logger("bff_web.auth")

Text = Annotated[str | None, Query(max_length=2000)]


@router.get("/sign-in")
async def sign_in(visit: VisitDep, return_to: Text = None) -> Response:
    if visit.session.signed_in:
        return await visit.redirect(accounts.safe_return_path(return_to))
    url = accounts.begin_sign_in(visit.session, visit.shop.oauth_client, return_to)
    return await visit.redirect(url)


@router.get("/callback")
async def callback(
    visit: VisitDep,
    code: Text = None,
    state: Text = None,
    iss: Text = None,
    error: Text = None,
) -> Response:
    shop, session = visit.shop, visit.session
    pending = session.pending_sign_in
    # RFC 9207: the answer must come from our issuer, which is the shop's public URL. Identity
    # advertises that it always sends ``iss``, so an answer without one is refused (§2.4).
    if iss is None or iss.rstrip("/") != shop.settings.public_url:
        return await _refused(visit, "The sign-in answer came from an unknown issuer.")
    if (
        error is not None
        and pending is not None
        and hmac.compare_digest(state or "", pending.state)
    ):
        session.pending_sign_in = None
        session.flash("Sign-in was cancelled.")
        return await visit.redirect(pending.return_to)
    if code is None or state is None:
        return await _refused(visit, "The sign-in answer is incomplete.")
    try:
        signed_in, return_to = await accounts.finish_sign_in(
            session,
            code=code,
            state=state,
            client=shop.oauth_client,
            identity=shop.identity,
            store=shop.sessions,
            now=shop.clock(),
            ttl=shop.session_ttl,
        )
    except SignInFailed as failure:
        return await _refused(visit, str(failure).capitalize() + ".")
    signed_in.flash("Welcome! You are signed in.")
    visit.continue_as(signed_in, saved=False)
    return await visit.redirect(return_to)


async def _refused(visit: Visit, detail: str) -> Response:
    return await visit.respond(await error_page(visit.request, 400, "Sign-in failed", detail))


@router.get("/sign-up")
async def sign_up_form(visit: VisitDep) -> Response:
    return await visit.page("sign_up.html", email="", problem=None)


@router.post("/sign-up")
async def sign_up(visit: VisitDep) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    shop = visit.shop
    try:
        signed_in = await accounts.sign_up_and_in(
            visit.session,
            email=email,
            password=password,
            client=shop.oauth_client,
            issuer=shop.settings.public_url,
            identity=shop.identity,
            store=shop.sessions,
            now=shop.clock(),
            ttl=shop.session_ttl,
            within=shop.settings.sign_up_seconds,
        )
    except SignUpRefused as refusal:
        return await visit.page("sign_up.html", status_code=422, email=email, problem=str(refusal))
    except SignInFailed as failure:
        # The account is open; only signing in at once failed: the usual sign-in page.
        _log.warning("sign-in after sign-up failed", error=str(failure))
        visit.session.flash("Your account is open. Sign in with it to shop.")
        return await visit.redirect(accounts.begin_sign_in(visit.session, shop.oauth_client, "/"))
    signed_in.flash("Welcome to the souk! Your account is open and you are signed in.")
    visit.continue_as(signed_in, saved=False)
    return await visit.redirect("/")


@router.post("/sign-out")
async def sign_out(visit: VisitDep) -> Response:
    shop = visit.shop
    await checked_form(visit.request, visit.session, shop.settings.public_url)
    revoked = await accounts.sign_out(visit.session, identity=shop.identity, store=shop.sessions)
    fresh = Session.start(shop.clock(), shop.session_ttl)
    fresh.flash("You are signed out." if revoked else "You are signed out of this browser.")
    visit.continue_as(fresh, saved=False)
    return await visit.redirect("/")
