"""The session cookie, CSRF protection, and the code flow with the tokens kept server-side."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bff_web.entrypoints.visits import COOKIE_NAME

from .conftest import PUBLIC_URL, csrf_token_of, sign_in

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import httpx

    from .conftest import Upstreams


def session_cookie(response: httpx.Response) -> str:
    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE_NAME)]
    return cookie


# -- the cookie ------------------------------------------------------------------------------


async def test_the_session_cookie_is_httponly_lax_and_site_wide(browser: httpx.AsyncClient) -> None:
    cookie = session_cookie(await browser.get("/"))
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes


async def test_the_session_cookie_is_secure_when_served_over_tls(
    storefront_factory: Callable[..., Any],
) -> None:
    browser = await storefront_factory(base_url="https://shop.test")
    cookie = session_cookie(await browser.get("/"))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_the_session_cookie_is_secure_when_the_gateway_was_reached_over_tls(
    browser: httpx.AsyncClient,
) -> None:
    cookie = session_cookie(await browser.get("/", headers={"X-Forwarded-Proto": "https"}))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_the_cookie_is_sent_once_and_the_session_kept(browser: httpx.AsyncClient) -> None:
    first = await browser.get("/products/p-saffron")
    assert session_cookie(first)
    again = await browser.get("/products/p-saffron")
    assert again.headers.get_list("set-cookie") == []
    assert csrf_token_of(first.text) == csrf_token_of(again.text)


def stored_sessions(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "bff-web.db") as database:
        [(count,)] = database.execute("SELECT count(*) FROM sessions").fetchall()
    return int(count)


async def test_browsing_stores_no_session_until_it_holds_something(
    browser: httpx.AsyncClient, tmp_path: Path
) -> None:
    # Every visitor without a cookie (crawlers, scripts) gets one: storing a session for each
    # would let anyone fill the database with a loop of GETs.
    for _ in range(3):
        browser.cookies.clear()
        assert (await browser.get("/")).status_code == 200
    page = await browser.get("/products/p-saffron")
    assert stored_sessions(tmp_path) == 0
    token = csrf_token_of(page.text)
    added = await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    assert added.status_code == 303
    assert stored_sessions(tmp_path) == 1
    assert await cart_count(browser) == "1"


async def test_a_made_up_cookie_is_replaced_by_a_new_session(browser: httpx.AsyncClient) -> None:
    browser.cookies.set(COOKIE_NAME, "x" * 500, domain="shop.test")
    page = await browser.get("/")
    assert session_cookie(page)
    assert browser.cookies[COOKIE_NAME] != "x" * 500


async def test_a_well_formed_id_the_shop_did_not_issue_is_not_adopted(
    browser: httpx.AsyncClient,
) -> None:
    # An attacker plants a session id they know in the victim's browser ...
    planted = "A" * 43
    browser.cookies.set(COOKIE_NAME, planted, domain="shop.test")

    page = await browser.get("/products/p-saffron")
    token = csrf_token_of(page.text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})

    # ... but the shop issued its own, and the cart lives under that one.
    issued = browser.cookies[COOKIE_NAME]
    assert issued != planted
    assert session_cookie(page)
    assert await cart_count(browser) == "1"
    browser.cookies.set(COOKIE_NAME, planted, domain="shop.test")
    assert await cart_count(browser) != "1"


async def test_pages_are_not_cached_and_forbid_framing_and_foreign_scripts(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/")
    assert page.headers["cache-control"] == "no-store"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


# -- CSRF ------------------------------------------------------------------------------------


async def cart_count(browser: httpx.AsyncClient) -> str:
    page = (await browser.get("/cart")).text
    return page.split('data-testid="cart-count">', 1)[1].split("<", 1)[0]


@pytest.mark.parametrize("token", [None, "", "forged-token"], ids=["missing", "empty", "wrong"])
async def test_a_form_without_this_sessions_csrf_token_is_refused(
    browser: httpx.AsyncClient, token: str | None
) -> None:
    await browser.get("/products/p-saffron")
    form = {"product_id": "p-saffron"} | ({} if token is None else {"csrf_token": token})
    refused = await browser.post("/cart/items", data=form)
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    assert await cart_count(browser) == "0"


async def test_another_sessions_csrf_token_is_refused(
    storefront_factory: Callable[..., Any],
) -> None:
    mine, theirs = await storefront_factory(), await storefront_factory()
    their_token = csrf_token_of((await theirs.get("/products/p-saffron")).text)
    await mine.get("/")
    refused = await mine.post(
        "/cart/items", data={"csrf_token": their_token, "product_id": "p-saffron"}
    )
    assert refused.status_code == 403


async def test_a_form_posted_from_another_origin_is_refused_even_with_the_token(
    browser: httpx.AsyncClient,
) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    form = {"csrf_token": token, "product_id": "p-saffron"}
    foreign = await browser.post("/cart/items", data=form, headers={"Origin": "https://evil.test"})
    assert foreign.status_code == 403
    cross = await browser.post("/cart/items", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert await cart_count(browser) == "0"


@pytest.mark.parametrize("origin", [PUBLIC_URL, "null"])
async def test_a_form_from_the_shops_own_page_is_taken(
    browser: httpx.AsyncClient, origin: str
) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    added = await browser.post(
        "/cart/items",
        data={"csrf_token": token, "product_id": "p-saffron"},
        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
    )
    assert added.status_code == 303
    assert await cart_count(browser) == "1"


async def test_sign_out_needs_the_csrf_token_too(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    refused = await browser.post("/auth/sign-out", data={})
    assert refused.status_code == 403
    assert upstreams.revoked == []
    assert (await browser.get("/orders")).status_code == 200


# -- the code flow ---------------------------------------------------------------------------


async def test_sign_in_sends_the_browser_to_identity_with_state_and_a_pkce_challenge(
    browser: httpx.AsyncClient,
) -> None:
    started = await browser.get("/auth/sign-in", params={"return_to": "/cart"})
    assert started.status_code == 303
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{PUBLIC_URL}/oauth/authorize"
    )
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == "bff-web"
    assert query["redirect_uri"] == f"{PUBLIC_URL}/auth/callback"
    assert query["scope"] == "orders:read orders:write"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32
    assert len(query["code_challenge"]) == 43


async def test_signing_in_brings_the_shopper_back_where_they_were(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in", params={"return_to": "/cart"})
    code, state = upstreams.authorize(started.headers["location"])
    back = await browser.get(
        "/auth/callback", params={"code": code, "state": state, "iss": PUBLIC_URL}
    )
    assert back.status_code == 303
    assert back.headers["location"] == "/cart"
    assert "Welcome! You are signed in." in (await browser.get("/cart")).text


async def test_sign_in_never_sends_the_shopper_to_another_site(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in", params={"return_to": "//evil.test/x"})
    code, state = upstreams.authorize(started.headers["location"])
    back = await browser.get(
        "/auth/callback", params={"code": code, "state": state, "iss": PUBLIC_URL}
    )
    assert back.headers["location"] == "/"


async def test_signing_in_rotates_the_session_and_the_old_id_is_worthless(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    before = await browser.get("/products/p-saffron")
    planted = browser.cookies[COOKIE_NAME]
    csrf_before = csrf_token_of(before.text)
    await sign_in(browser, upstreams)
    after = browser.cookies[COOKIE_NAME]
    assert after != planted
    assert csrf_token_of((await browser.get("/orders")).text) != csrf_before
    # Whoever planted (or saw) the pre-sign-in id holds nothing: it names no session now.
    browser.cookies.set(COOKIE_NAME, planted, domain="shop.test")
    stale = await browser.get("/orders")
    assert stale.status_code == 303
    assert stale.headers["location"].startswith("/auth/sign-in")


async def test_the_cart_survives_signing_in(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    await sign_in(browser, upstreams)
    assert await cart_count(browser) == "1"


async def test_the_tokens_never_reach_the_browser(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    pages = [await browser.get(path) for path in ("/", "/orders", "/cart")]
    [access] = upstreams.access_tokens
    [refresh] = upstreams.refresh_tokens
    for page in pages:
        assert access not in page.text
        assert refresh not in page.text
    assert set(browser.cookies.keys()) == {COOKIE_NAME}
    assert browser.cookies[COOKIE_NAME] not in (access, refresh)


async def test_a_callback_with_a_wrong_state_is_refused_and_exchanges_nothing(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in")
    code, _ = upstreams.authorize(started.headers["location"])
    refused = await browser.get(
        "/auth/callback", params={"code": code, "state": "forged", "iss": PUBLIC_URL}
    )
    assert refused.status_code == 400
    assert "Sign-in failed" in refused.text
    assert code in upstreams.codes  # never sent to identity
    assert upstreams.access_tokens == {}
    assert (await browser.get("/orders")).status_code == 303


async def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(
    storefront_factory: Callable[..., Any], upstreams: Upstreams
) -> None:
    victim, attacker = await storefront_factory(), await storefront_factory()
    started = await attacker.get("/auth/sign-in")
    code, state = upstreams.authorize(started.headers["location"], "attacker")
    await victim.get("/")
    # Login CSRF: the attacker's own callback URL, opened in the victim's browser.
    refused = await victim.get(
        "/auth/callback", params={"code": code, "state": state, "iss": PUBLIC_URL}
    )
    assert refused.status_code == 400
    assert upstreams.access_tokens == {}


async def test_a_callback_replayed_after_sign_in_is_refused(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in")
    code, state = upstreams.authorize(started.headers["location"])
    assert (
        await browser.get(
            "/auth/callback", params={"code": code, "state": state, "iss": PUBLIC_URL}
        )
    ).is_redirect
    replayed = await browser.get(
        "/auth/callback", params={"code": code, "state": state, "iss": PUBLIC_URL}
    )
    assert replayed.status_code == 400


async def test_a_callback_from_another_issuer_is_refused(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in")
    code, state = upstreams.authorize(started.headers["location"])
    refused = await browser.get(
        "/auth/callback", params={"code": code, "state": state, "iss": "https://evil.test"}
    )
    assert refused.status_code == 400
    assert upstreams.access_tokens == {}


async def test_a_callback_without_the_issuer_is_refused(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    # Identity's metadata says it always names itself (RFC 9207), so an answer that does not
    # cannot be told apart from another server's; the client must refuse it (§2.4).
    started = await browser.get("/auth/sign-in")
    code, state = upstreams.authorize(started.headers["location"])
    refused = await browser.get("/auth/callback", params={"code": code, "state": state})
    assert refused.status_code == 400
    assert upstreams.access_tokens == {}


async def test_a_code_identity_refuses_signs_nobody_in(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in")
    _, state = upstreams.authorize(started.headers["location"])
    refused = await browser.get(
        "/auth/callback", params={"code": "made-up", "state": state, "iss": PUBLIC_URL}
    )
    assert refused.status_code == 400
    assert (await browser.get("/orders")).status_code == 303


async def test_a_denied_sign_in_comes_back_signed_out_with_a_notice(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    started = await browser.get("/auth/sign-in", params={"return_to": "/cart"})
    _, state = upstreams.authorize(started.headers["location"])
    back = await browser.get(
        "/auth/callback", params={"error": "access_denied", "state": state, "iss": PUBLIC_URL}
    )
    assert back.headers["location"] == "/cart"
    assert "Sign-in was cancelled." in (await browser.get("/cart")).text


async def test_sign_out_revokes_the_grant_and_ends_the_session(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    signed_in_cookie = browser.cookies[COOKIE_NAME]
    [refresh] = upstreams.refresh_tokens
    token = csrf_token_of((await browser.get("/")).text)
    out = await browser.post("/auth/sign-out", data={"csrf_token": token})
    assert out.status_code == 303
    assert upstreams.revoked == [refresh]
    assert browser.cookies[COOKIE_NAME] != signed_in_cookie
    assert "You are signed out." in (await browser.get("/")).text
    assert (await browser.get("/orders")).status_code == 303
    browser.cookies.set(COOKIE_NAME, signed_in_cookie, domain="shop.test")
    assert (await browser.get("/orders")).status_code == 303


async def test_an_access_token_about_to_expire_is_refreshed_before_it_is_used(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    upstreams.token_lifetime = 30  # inside the 60 s refresh margin: stale at once
    await sign_in(browser, upstreams)
    [first_refresh] = upstreams.refresh_tokens
    assert (await browser.get("/orders")).status_code == 200
    assert first_refresh not in upstreams.refresh_tokens  # used, and rotated by identity
    assert len(upstreams.refresh_tokens) == 1


async def test_pages_loaded_together_as_the_token_expires_refresh_it_once(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    # Identity rotates refresh tokens and takes a reused one for theft (it revokes the
    # grant): two tabs refreshing the same token at once must not sign the customer out.
    upstreams.token_lifetime = 30
    await sign_in(browser, upstreams)
    pages = await asyncio.gather(*(browser.get("/orders") for _ in range(4)))
    assert [page.status_code for page in pages] == [200] * 4
    assert len(upstreams.refresh_tokens) == 1
    assert (await browser.get("/orders")).status_code == 200


async def test_a_slow_form_does_not_put_back_tokens_another_page_refreshed_meanwhile(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    # The form's request loaded the session before the other page rotated the refresh token;
    # saving its cart change must not bring the used token back, which identity would take
    # for a stolen one on the next refresh.
    upstreams.token_lifetime = 30
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    upstreams.product_delay = 0.3

    async def orders_page_meanwhile() -> int:
        await asyncio.sleep(0.1)
        return (await browser.get("/orders")).status_code

    added, listed = await asyncio.gather(
        browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"}),
        orders_page_meanwhile(),
    )
    assert (added.status_code, listed) == (303, 200)
    assert (await browser.get("/orders")).status_code == 200
    assert '<span class="badge" data-testid="cart-count">1</span>' in (await browser.get("/")).text


async def test_a_form_sent_while_another_tab_signs_out_does_not_sign_the_browser_back_in(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    signed_in_cookie = browser.cookies[COOKIE_NAME]
    token = csrf_token_of((await browser.get("/")).text)
    upstreams.product_delay = 0.3

    async def sign_out_meanwhile() -> None:
        await asyncio.sleep(0.1)
        await browser.post("/auth/sign-out", data={"csrf_token": token})

    await asyncio.gather(
        browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"}),
        sign_out_meanwhile(),
    )
    browser.cookies.set(COOKIE_NAME, signed_in_cookie, domain="shop.test")
    # Orders may still take the access token for the seconds until it learns of the
    # revocation: the shop itself must not be signed in with it any more.
    assert 'action="/auth/sign-out"' not in (await browser.get("/")).text


async def test_a_refresh_identity_refuses_means_signing_in_again(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    upstreams.token_lifetime = 30
    await sign_in(browser, upstreams)
    upstreams.refresh_tokens.clear()  # the grant was revoked elsewhere
    page = await browser.get("/orders")
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/sign-in?return_to=%2Forders"


# -- sign-up ---------------------------------------------------------------------------------


async def test_sign_up_opens_the_account_at_identity_and_signs_the_customer_in_at_once(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    token = csrf_token_of((await browser.get("/auth/sign-up")).text)
    anonymous = browser.cookies["souk_session"]
    done = await browser.post(
        "/auth/sign-up",
        data={"csrf_token": token, "email": "amina@example.com", "password": "sesame-opens"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    assert upstreams.accounts == {"amina@example.com": "sesame-opens"}
    # Signed in: a new session (no fixation), the customer's token in it, orders reachable.
    assert browser.cookies["souk_session"] != anonymous
    assert list(upstreams.access_tokens.values()) == ["amina@example.com"]
    home = await browser.get("/")
    assert "Welcome to the souk! Your account is open and you are signed in." in home.text
    assert "My orders" in home.text
    assert "Sign in with it" not in home.text
    assert (await browser.get("/orders")).status_code == 200


async def test_when_signing_in_at_once_fails_sign_up_falls_back_to_the_sign_in_page(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    upstreams.authorize_refuses = True  # identity keeps the account but refuses (a throttle)
    token = csrf_token_of((await browser.get("/auth/sign-up")).text)
    done = await browser.post(
        "/auth/sign-up",
        data={"csrf_token": token, "email": "amina@example.com", "password": "sesame-opens"},
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"{PUBLIC_URL}/oauth/authorize?")
    assert upstreams.accounts == {"amina@example.com": "sesame-opens"}
    assert upstreams.access_tokens == {}


async def test_a_slow_identity_sends_the_new_customer_to_sign_in_within_the_budget(
    storefront_factory: Callable[..., Any], upstreams: Upstreams
) -> None:
    browser = await storefront_factory(sign_up_seconds=0.5)
    upstreams.authorize_delay = 3.0
    token = csrf_token_of((await browser.get("/auth/sign-up")).text)
    done = await browser.post(
        "/auth/sign-up",
        data={"csrf_token": token, "email": "amina@example.com", "password": "sesame-opens"},
    )
    # Identity would have signed them in after 3 s: the budget sent them to sign in instead.
    assert done.headers["location"].startswith(f"{PUBLIC_URL}/oauth/authorize?")
    assert upstreams.accounts == {"amina@example.com": "sesame-opens"}


async def test_a_token_orders_no_longer_honours_means_signing_in_again_not_a_loop(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    upstreams.access_tokens.clear()  # signed out elsewhere: orders refuses the token
    page = await browser.get("/orders")
    assert page.headers["location"] == "/auth/sign-in?return_to=%2Forders"
    again = await browser.get(page.headers["location"])
    assert again.headers["location"].startswith(f"{PUBLIC_URL}/oauth/authorize?")


async def test_a_sign_up_identity_does_not_answer_is_a_503_page_not_a_sign_in(
    storefront_factory: Callable[..., Any], upstreams: Upstreams
) -> None:
    # Whether the account was opened is unknown: the shopper is not told it was.
    browser = await storefront_factory(urls={"identity": "http://127.0.0.1:9"})
    token = csrf_token_of((await browser.get("/auth/sign-up")).text)
    done = await browser.post(
        "/auth/sign-up",
        data={"csrf_token": token, "email": "amina@example.com", "password": "sesame-opens"},
        headers={"Accept": "text/html"},
    )
    assert done.status_code == 503
    assert "Your account is open" not in done.text
    assert upstreams.accounts == {}
