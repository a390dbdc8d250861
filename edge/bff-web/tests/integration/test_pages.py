"""The storefront's pages, aggregated from several upstreams, and how they degrade."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from .conftest import PUBLIC_URL, csrf_token_of, sign_in, unused_grpc_url

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from .conftest import Upstreams


async def test_the_front_page_shows_the_categories_and_the_products(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "Tea &amp; coffee" in page.text
    assert "Taliouine saffron threads, 2 g" in page.text
    assert "€14.90" in page.text
    assert "/images/products/p-saffron.svg" in page.text


async def test_a_category_and_a_search_narrow_the_grid(browser: httpx.AsyncClient) -> None:
    tea = await browser.get("/", params={"category": "tea-coffee"})
    assert "Brass teapot" in tea.text
    assert "Cumin seeds" not in tea.text
    found = await browser.get("/", params={"q": "cumin"})
    assert "Cumin seeds" in found.text
    assert "Brass teapot" not in found.text
    assert "Results for “cumin”" in found.text


async def test_the_front_page_without_categories_still_lists_products(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    upstreams.categories_down = True
    page = await browser.get("/")
    assert page.status_code == 200
    assert "Categories are unavailable just now." in page.text
    assert "Brass teapot" in page.text


async def test_a_product_page_shows_the_product_its_stock_and_its_stall(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/products/p-saffron")
    assert page.status_code == 200
    assert "Taliouine saffron threads, 2 g" in page.text
    assert "In stock: 12 available" in page.text
    assert "More from this stall" in page.text
    assert "Cumin seeds, 100 g" in page.text
    assert ">Spices</a>" in page.text  # the category by its name, not its slug


async def test_a_product_inventory_does_not_stock_is_shown_sold_out(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/products/p-cumin")
    assert page.status_code == 200
    assert "Sold out" in page.text


async def test_with_inventory_down_the_product_page_renders_and_says_stock_is_unavailable(
    storefront_factory: Callable[..., Any],
) -> None:
    browser = await storefront_factory(urls={"inventory": unused_grpc_url()})
    page = await browser.get("/products/p-saffron")
    assert page.status_code == 200
    assert "Taliouine saffron threads, 2 g" in page.text
    assert "Stock unavailable" in page.text
    assert "Stock levels are unavailable just now" in page.text
    assert "Add to cart" in page.text


async def test_a_slow_inventory_costs_the_product_page_no_more_than_its_timeout(
    storefront_factory: Callable[..., Any], upstreams: Upstreams
) -> None:
    upstreams.inventory_delay = 5.0
    browser = await storefront_factory(inventory_timeout=0.3)
    started = time.monotonic()
    page = await browser.get("/products/p-saffron")
    # Not a speed test: the page must not wait for the 5 s answer that would come.
    assert time.monotonic() - started < 4.0
    assert page.status_code == 200
    assert "Stock unavailable" in page.text


async def test_with_the_catalog_down_a_page_says_so_with_a_503(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    upstreams.catalog_down = True
    page = await browser.get("/products/p-saffron")
    assert page.status_code == 503
    assert "The catalog service is not answering just now" in page.text


async def test_an_unknown_product_is_a_404_page(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/products/no-such-thing")
    assert page.status_code == 404
    assert "No such product" in page.text


async def test_product_pictures_are_svg_and_the_same_for_the_same_product(
    browser: httpx.AsyncClient,
) -> None:
    first = await browser.get("/images/products/p-saffron.svg")
    again = await browser.get("/images/products/p-saffron.svg")
    other = await browser.get("/images/products/p-cumin.svg")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/svg+xml"
    assert first.text.startswith("<svg")
    assert first.text == again.text != other.text


async def test_the_cart_adds_changes_and_totals_lines(browser: httpx.AsyncClient) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    added = await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-saffron", "quantity": "2"}
    )
    assert added.status_code == 303
    await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-teapot", "quantity": "1"}
    )
    cart = await browser.get("/cart")
    assert "Added Brass teapot to your cart." in cart.text
    assert '<span class="badge" data-testid="cart-count">3</span>' in cart.text
    assert "€71.80" in cart.text  # 2 x 14.90 + 42.00
    await browser.post("/cart/items/p-teapot", data={"csrf_token": token, "quantity": "0"})
    cart = await browser.get("/cart")
    assert "Brass teapot" not in cart.text
    assert "€29.80" in cart.text


async def test_an_unknown_product_cannot_go_in_the_cart(browser: httpx.AsyncClient) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    refused = await browser.post("/cart/items", data={"csrf_token": token, "product_id": "nope"})
    assert refused.status_code == 404
    assert '<span class="badge" data-testid="cart-count">0</span>' in (await browser.get("/")).text


async def test_changing_a_line_puts_nothing_in_the_cart_that_was_not_added(
    browser: httpx.AsyncClient,
) -> None:
    # The change form is for the cart's own lines: a made-up id (of any length, fifty times)
    # would otherwise be kept in the session without the catalog ever having been asked.
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    changed = await browser.post("/cart/items/nope", data={"csrf_token": token, "quantity": "5"})
    assert changed.status_code == 303
    page = (await browser.get("/")).text
    assert '<span class="badge" data-testid="cart-count">0</span>' in page
    assert "Not changed: that product is not in your cart." in page


async def test_checkout_places_the_cart_as_the_customer_and_empties_it(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    placed = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert placed.status_code == 303
    [order_id] = upstreams.orders
    assert placed.headers["location"] == f"/orders/{order_id}"
    [request] = upstreams.placed
    assert request["customer"] == "amina"
    assert request["key"]
    assert request["body"] == {
        "items": [{"product_id": "p-saffron", "quantity": 1}],
        "payment": {"card_token": "tok_ok"},
    }
    status = await browser.get(f"/orders/{order_id}")
    assert 'data-testid="order-status">Pending' in status.text
    assert "order-status.js" in status.text
    assert '<meta http-equiv="refresh"' in status.text
    polled = await browser.get(f"/orders/{order_id}/status")
    assert polled.json() == {"id": order_id, "status": "PENDING", "settled": False}
    upstreams.orders[order_id]["public"]["status"] = "CONFIRMED"
    settled = await browser.get(f"/orders/{order_id}")
    assert "order-status.js" not in settled.text
    assert "Your order is confirmed" in settled.text
    history = await browser.get("/orders")
    assert order_id[:8] in history.text
    assert "Your cart is empty" in (await browser.get("/cart")).text


async def test_a_checkout_sent_twice_carries_one_idempotency_key(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    first = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert first.status_code == 303
    # The cart is empty now: a second click has nothing to place again.
    again = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert again.status_code == 303
    assert again.headers["location"] == "/cart"
    assert len(upstreams.placed) == 1


async def test_checkout_without_sign_in_sends_the_shopper_to_sign_in_and_back_to_the_cart(
    browser: httpx.AsyncClient,
) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    cart = await browser.get("/cart")
    assert "Sign in to check out" in cart.text
    refused = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert refused.status_code == 303
    assert refused.headers["location"] == "/auth/sign-in?return_to=%2Fcart"


async def test_order_pages_need_a_signed_in_customer(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/orders")
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/sign-in?return_to=%2Forders"


async def test_the_order_pages_poll_without_a_customer_is_refused_not_sent_to_sign_in(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    # The script's fetch would follow a redirect to /auth/sign-in, and every poll would start
    # a new sign-in, replacing the one the shopper may have under way in another tab.
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    placed = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    status_url = placed.headers["location"] + "/status"
    upstreams.access_tokens.clear()  # the grant was revoked elsewhere
    json = {"Accept": "application/json"}
    polled = await browser.get(status_url, headers=json)
    assert polled.status_code == 401
    assert polled.headers["content-type"].startswith("application/problem+json")
    started = await browser.get("/auth/sign-in")
    assert (await browser.get(status_url, headers=json)).status_code == 401
    code, state = upstreams.authorize(started.headers["location"])
    params = {"code": code, "state": state, "iss": PUBLIC_URL}
    assert (await browser.get("/auth/callback", params=params)).status_code == 303
    assert (await browser.get(status_url, headers=json)).status_code == 200


async def test_another_customers_order_is_not_found(
    storefront_factory: Callable[..., Any], upstreams: Upstreams
) -> None:
    amina, brahim = await storefront_factory(), await storefront_factory()
    await sign_in(amina, upstreams, "amina")
    await sign_in(brahim, upstreams, "brahim")
    token = csrf_token_of((await amina.get("/")).text)
    await amina.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    placed = await amina.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    page = await brahim.get(placed.headers["location"])
    assert page.status_code == 404


async def test_an_unknown_address_is_a_page_for_browsers_and_a_problem_for_api_clients(
    browser: httpx.AsyncClient,
) -> None:
    page = await browser.get("/no/such/page", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404
    assert "No such page" in page.text
    problem = await browser.get("/api/nowhere", headers={"Accept": "*/*"})
    assert problem.status_code == 404
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["type"] == "https://souk.dev/problems/not-found"


async def test_an_order_orders_refuses_keeps_the_cart_and_says_why(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    upstreams.refuse_orders = "quantity: at most 100"
    refused = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert refused.headers["location"] == "/cart"
    cart = await browser.get("/cart")
    assert "Your order could not be placed: quantity: at most 100" in cart.text
    assert "Taliouine saffron threads" in cart.text
    upstreams.refuse_orders = None
    placed = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert placed.headers["location"].startswith("/orders/")
    first_key, second_key = (request["key"] for request in upstreams.placed)
    assert first_key != second_key


# -- stock in the cart, a forgiving checkout, pages that keep their context ------------------


async def test_a_sold_out_product_cannot_go_in_the_cart(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/products/p-cumin")  # not stocked
    assert "Add to cart" not in page.text
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    refused = await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-cumin", "quantity": "1"}
    )
    assert refused.headers["location"] == "/products/p-cumin"
    back = await browser.get("/products/p-cumin")
    assert "Not added: Cumin seeds, 100 g has sold out." in back.text
    assert '<span class="badge" data-testid="cart-count">0</span>' in back.text


async def test_no_more_than_the_stock_goes_in_the_cart(browser: httpx.AsyncClient) -> None:
    token = csrf_token_of((await browser.get("/products/p-teapot")).text)  # 3 in stock
    await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-teapot", "quantity": "2"}
    )
    await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-teapot", "quantity": "2"}
    )
    page = await browser.get("/products/p-teapot")
    assert "Not added: only 3 of Brass teapot left; you have 2 in your cart." in page.text
    raised = await browser.post("/cart/items/p-teapot", data={"csrf_token": token, "quantity": "4"})
    assert raised.headers["location"] == "/cart"
    cart = await browser.get("/cart")
    assert "Not changed: only 3 of Brass teapot left" in cart.text
    assert '<span class="badge" data-testid="cart-count">2</span>' in cart.text


async def test_stock_that_ran_out_in_the_cart_holds_the_checkout_back(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-teapot", "quantity": "3"}
    )
    upstreams.stock["TEA-POT-BRASS"] = 1  # others bought them meanwhile
    cart = await browser.get("/cart")
    assert "Only 1 of Brass teapot left: lower the quantity." in cart.text
    assert "Place order" not in cart.text
    refused = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    assert refused.headers["location"] == "/cart"
    assert upstreams.placed == []


async def test_a_script_adds_to_the_cart_and_stays_on_the_page(browser: httpx.AsyncClient) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    added = await browser.post(
        "/cart/items",
        data={"csrf_token": token, "product_id": "p-saffron", "quantity": "2"},
        headers={"Accept": "application/json"},
    )
    assert added.status_code == 200
    assert added.json() == {
        "ok": True,
        "notice": "Added Taliouine saffron threads, 2 g to your cart.",
        "cart_count": 2,
    }
    refused = await browser.post(
        "/cart/items/p-saffron",
        data={"csrf_token": token, "quantity": "13"},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 409
    assert refused.json()["cart_count"] == 2
    assert "only 12" in refused.json()["notice"]


async def test_a_rejected_order_gives_the_cart_back_and_says_why_in_words(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post(
        "/cart/items", data={"csrf_token": token, "product_id": "p-saffron", "quantity": "2"}
    )
    placed = await browser.post("/checkout", data={"csrf_token": token, "card_token": "tok_ok"})
    order_id = placed.headers["location"].rsplit("/", 1)[1]
    pending = await browser.get(f"/orders/{order_id}")
    assert "Thank you" not in pending.text
    assert "Taliouine saffron threads, 2 g" in pending.text  # named while pending
    assert "Your cart is empty" in (await browser.get("/cart")).text
    order = upstreams.orders[order_id]["public"]
    order.update(status="REJECTED", reason="out of stock: SPC-SAFFRON-2G (1 available)")
    rejected = await browser.get(f"/orders/{order_id}")
    assert "Taliouine saffron threads, 2 g: only 1 left, fewer than you asked for." in rejected.text
    assert "SPC-SAFFRON-2G" not in rejected.text.replace("SKU SPC", "")
    assert "Thank you" not in rejected.text
    assert "Try again" in rejected.text
    assert '<span class="badge" data-testid="cart-count">2</span>' in rejected.text
    # Seen twice, the cart is given back once.
    await browser.get(f"/orders/{order_id}")
    assert (
        '<span class="badge" data-testid="cart-count">2</span>' in (await browser.get("/cart")).text
    )


@pytest.mark.parametrize(
    ("address", "part"),
    [
        ("/?page=0", "the page number"),
        ("/?page=abc", "the page number"),
        ("/?category=Not%20A%20Slug", "the shelf"),
        ("/?max_price=cheap", "the highest price"),
        ("/orders?page=-1", "the page number"),
    ],
)
async def test_a_bad_address_is_an_html_page_that_keeps_the_cart(
    browser: httpx.AsyncClient, address: str, part: str
) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    page = await browser.get(address, headers={"Accept": "text/html"})
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert part in page.text
    assert '<span class="badge" data-testid="cart-count">1</span>' in page.text
    assert "Sign in" in page.text
    api = await browser.get(address, headers={"Accept": "application/json"})
    assert api.status_code == 422
    assert api.headers["content-type"] == "application/problem+json"


async def test_an_unknown_address_keeps_the_cart_and_account_links(
    browser: httpx.AsyncClient,
) -> None:
    token = csrf_token_of((await browser.get("/products/p-saffron")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    for address in ("/no/such/page", "/products/nope"):
        page = await browser.get(address, headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert '<span class="badge" data-testid="cart-count">1</span>' in page.text
        assert "Sign up" in page.text


async def test_a_price_range_and_an_order_go_to_the_catalog_in_its_units(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    page = await browser.get(
        "/", params={"q": "saffron", "sort": "price", "min_price": "10", "max_price": "14,5"}
    )
    assert page.status_code == 200
    assert upstreams.listings[-1]["min_price"] == "1000"
    assert upstreams.listings[-1]["max_price"] == "1450"
    assert upstreams.listings[-1]["sort"] == "price"
    assert '<option value="price" selected>' in page.text
    assert 'name="min_price" size="5" value="10.00"' in page.text
    assert "<h1" in page.text.split('class="refine"')[0]  # a main heading on results


async def test_a_page_asked_for_under_another_host_name_goes_to_the_public_address(
    browser: httpx.AsyncClient,
) -> None:
    moved = await browser.get(
        "/cart?x=1", headers={"X-Forwarded-Host": "127.0.0.1:8080", "Accept": "text/html"}
    )
    assert moved.status_code == 308
    assert moved.headers["location"] == f"{PUBLIC_URL}/cart?x=1"
    same = await browser.get("/cart", headers={"X-Forwarded-Host": "shop.test"})
    assert same.status_code == 200


ADDRESS = {
    "name": "Amina Benali",
    "address": "12 Derb Sidi Ahmed",
    "postcode": "30110",
    "city": "Fes",
    "country": "MA",
}


async def test_checkout_goes_through_delivery_and_review_to_an_order_with_its_address(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    cart = await browser.get("/cart")
    assert 'href="/checkout"' in cart.text
    step = await browser.get("/checkout")
    assert step.status_code == 200
    assert "Shipping address" in step.text
    # Each option with orders' price of it.
    assert "Standard delivery — 3 to 5 working days, free" in step.text
    assert "Express delivery — next working day, €9.90" in step.text

    form = {"csrf_token": token, **ADDRESS, "option": "express", "card_token": "tok_ok"}
    review = await browser.post("/checkout/review", data=form)

    assert review.status_code == 200
    assert "Review your order" in review.text
    assert "12 Derb Sidi Ahmed<br>30110 Fes<br>Morocco" in review.text
    assert "Express delivery — next working day, €9.90" in review.text
    # The total is what orders will charge: the items and the delivery.
    assert 'data-testid="review-subtotal">€14.90<' in review.text
    assert 'data-testid="review-delivery-cost">€9.90<' in review.text
    assert 'data-testid="review-total">€24.80<' in review.text
    assert "Test card — accepted" in review.text
    assert upstreams.placed == []  # reviewing places nothing
    placed = await browser.post("/checkout", data=form)
    assert placed.status_code == 303
    [request] = upstreams.placed
    assert request["body"]["delivery"] == {**ADDRESS, "option": "express"}
    [order_id] = upstreams.orders
    upstreams.orders[order_id]["public"]["total"] = {"amount": 2480, "currency": "EUR"}
    confirmation = (await browser.get(placed.headers["location"])).text
    assert 'data-testid="order-date">Placed ' in confirmation
    assert "Amina Benali<br>12 Derb Sidi Ahmed<br>30110 Fes<br>Morocco" in confirmation
    assert 'data-testid="order-delivery-cost">€9.90<' in confirmation
    assert 'data-testid="order-total">€24.80<' in confirmation
    assert 'data-testid="order-payment">By card' in confirmation


async def test_standard_delivery_is_free_in_the_review_and_an_order_placed_before_prices_too(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    form = {"csrf_token": token, **ADDRESS, "option": "standard", "card_token": "tok_ok"}

    review = await browser.post("/checkout/review", data=form)

    assert 'data-testid="review-delivery-cost">Free<' in review.text
    assert 'data-testid="review-total">€14.90<' in review.text
    placed = await browser.post("/checkout", data=form)
    [order_id] = upstreams.orders
    # An order placed under orders API 1.1 has a delivery without a price: it was free.
    del upstreams.orders[order_id]["public"]["delivery"]["price"]
    page = (await browser.get(placed.headers["location"])).text
    assert 'data-testid="order-delivery-cost">Free<' in page
    assert "Standard delivery — 3 to 5 working days</p>" in page


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "  "}, "name", "Enter your full name."),
        ({"postcode": "9" * 21}, "postcode", "Your postcode must be at most 20 characters."),
        ({"country": "ZZ"}, "country", "Choose a country we deliver to."),
        ({"option": "teleport"}, "option", "Choose standard or express delivery."),
        ({"card_token": "tok_stolen"}, "card", "Choose a card to pay with."),
    ],
)
async def test_a_wrong_delivery_field_is_named_beside_it_and_nothing_is_placed(
    browser: httpx.AsyncClient,
    upstreams: Upstreams,
    change: dict[str, str],
    field: str,
    message: str,
) -> None:
    await sign_in(browser, upstreams)
    token = csrf_token_of((await browser.get("/")).text)
    await browser.post("/cart/items", data={"csrf_token": token, "product_id": "p-saffron"})
    form = {"csrf_token": token, **ADDRESS, "option": "standard", "card_token": "tok_ok", **change}

    for path in ("/checkout/review", "/checkout"):
        answer = await browser.post(path, data=form)
        assert answer.status_code == 422, path
        assert f'<p class="field-problem" id="error-{field}"' in answer.text
        assert message in answer.text
        assert f'aria-describedby="error-{field}"' in answer.text
        assert 'value="12 Derb Sidi Ahmed"' in answer.text  # what was typed stays
    assert upstreams.placed == []


async def test_the_delivery_step_wants_a_signed_in_customer_with_a_cart(
    browser: httpx.AsyncClient, upstreams: Upstreams
) -> None:
    signed_out = await browser.get("/checkout")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"].startswith("/auth/sign-in")
    await sign_in(browser, upstreams)
    empty = await browser.get("/checkout")
    assert (empty.status_code, empty.headers["location"]) == (303, "/cart")
