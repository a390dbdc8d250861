"""A session: what rotates at sign-in, what a placed order resets, notices shown once."""

from __future__ import annotations

from bff_web.domain.session import CustomerTokens, Session

from .conftest import NOW, TTL


def test_new_sessions_have_unguessable_distinct_ids_and_csrf_tokens() -> None:
    first, second = Session.start(NOW, TTL), Session.start(NOW, TTL)
    assert len(first.id) >= 43
    assert len({first.id, second.id, first.csrf_token, second.csrf_token}) == 4
    assert first.expires_at == NOW + TTL
    assert not first.signed_in


def test_signing_in_gives_a_new_id_and_csrf_token_and_keeps_the_cart() -> None:
    before = Session.start(NOW, TTL)
    before.cart.add("saffron", 2)
    before.begin_sign_in("/cart")
    tokens = CustomerTokens("access", "refresh", NOW + TTL)
    after = before.signed_in_as(tokens, NOW, TTL)
    assert after.id != before.id
    assert after.csrf_token != before.csrf_token
    assert after.tokens == tokens
    assert after.pending_sign_in is None
    assert after.cart.count == 2
    after.cart.add("teapot")
    assert before.cart.count == 2  # a copy: the old session's cart is not the new one's


def test_a_new_sign_in_attempt_replaces_the_pending_one() -> None:
    session = Session.start(NOW, TTL)
    first = session.begin_sign_in("/")
    second = session.begin_sign_in("/cart")
    assert session.pending_sign_in == second
    assert (first.state, first.code_verifier) != (second.state, second.code_verifier)


def test_placing_an_order_empties_the_cart_and_takes_a_new_checkout_key() -> None:
    session = Session.start(NOW, TTL)
    session.cart.add("saffron")
    key = session.checkout_key
    session.order_placed("order-1")
    assert session.cart.is_empty
    assert session.checkout_key != key


def test_notices_are_shown_once() -> None:
    session = Session.start(NOW, TTL)
    session.flash("Added to your cart.")
    assert session.take_flashes() == ["Added to your cart."]
    assert session.take_flashes() == []


def test_a_rejected_orders_cart_comes_back_added_to_what_was_put_in_since() -> None:
    session = Session.start(NOW, TTL)
    session.cart.add("saffron", 2)
    session.order_placed("order-1")
    session.cart.add("teapot")
    assert session.order_settled("order-1", rejected=True)
    assert session.cart.quantities == {"teapot": 1, "saffron": 2}
    assert session.held_cart is None
    # Seen again (a reload of the rejected order's page): nothing is added twice.
    assert not session.order_settled("order-1", rejected=True)
    assert session.cart.quantities == {"teapot": 1, "saffron": 2}


def test_a_confirmed_or_another_orders_settling_gives_nothing_back() -> None:
    session = Session.start(NOW, TTL)
    session.cart.add("saffron")
    session.order_placed("order-1")
    assert not session.order_settled("order-0", rejected=True)
    assert session.held_cart is not None
    assert not session.order_settled("order-1", rejected=False)
    assert session.cart.is_empty
    assert session.held_cart is None
