"""The shop's pages and forms: browse, product, cart, checkout, orders.

Routes are thin: read the request, ask the service layer, render a template. Every POST
checks its CSRF token first and answers See Other, so a reload never sends it again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, Response

from bff_web.domain.delivery import (
    COUNTRIES,
    DeliveryForm,
    has_delivery,
    option_labels,
    read_delivery,
)
from bff_web.domain.errors import CartLimitReached, CheckoutRefused, InvalidQuantity, NotInCart
from bff_web.entrypoints.csrf import checked_form
from bff_web.entrypoints.visits import PAGE_HEADERS, Visit, VisitDep
from bff_web.service_layer import orders, pages

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bff_web.domain.shop import Product

router = APIRouter(include_in_schema=False)

# The payment simulators' test cards: what the checkout form offers instead of a card number.
TEST_CARDS: Final = {"tok_ok": "Test card — accepted", "tok_decline": "Test card — declined"}
MAX_PAGE: Final = 1000
SEARCH_MAX_LENGTH: Final = 100

Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]


SORTS: Final = {
    "relevance": "Best match",
    "price": "Price, low to high",
    "-price": "Price, high to low",
    "name": "Name",
}
# A price as a shopper types it: euros, with up to two decimals ("12", "12.5", "12,50").
PRICE_PATTERN: Final = r"^\s*(\d{1,7}([.,]\d{1,2})?)?\s*$"
Price = Annotated[str | None, Query(max_length=12, pattern=PRICE_PATTERN)]


@router.get("/")
async def storefront(
    *,
    visit: VisitDep,
    category: Annotated[str | None, Query(max_length=60, pattern=r"^[a-z0-9-]*$")] = None,
    q: Annotated[str | None, Query(max_length=SEARCH_MAX_LENGTH)] = None,
    sort: Annotated[str | None, Query(pattern=r"^(relevance|price|-price|name)?$")] = None,
    min_price: Price = None,
    max_price: Price = None,
    page: Page = 1,
) -> Response:
    query = (q or "").strip() or None
    listing = pages.Listing(
        category=category or None,
        query=query,
        # Without words there is nothing to rank by; the catalog would list by name anyway.
        sort=sort or None,
        min_price=_cents(min_price),
        max_price=_cents(max_price),
        page=page,
    )
    front = await pages.storefront(
        visit.shop.catalog, listing, page_size=visit.shop.settings.products_per_page
    )
    return await visit.page("storefront.html", front=front, sorts=SORTS)


@router.get("/products/{product_id}")
async def product(visit: VisitDep, product_id: str) -> Response:
    view = await pages.product_view(visit.shop.catalog, visit.shop.stock, product_id)
    return await visit.page("product.html", view=view)


@router.get("/cart")
async def cart(visit: VisitDep) -> Response:
    view = await pages.cart_view(visit.shop.catalog, visit.shop.stock, visit.session.cart)
    return await visit.page("cart.html", view=view, cards=TEST_CARDS)


@router.post("/cart/items")
async def add_to_cart(visit: VisitDep) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    product_id = str(form.get("product_id") or "")
    # The product must exist: a cart holds only what the shop sells.
    product = await visit.shop.catalog.product(product_id)
    back = _back_to(form.get("return_to"), f"/products/{product.id}")
    try:
        quantity = _quantity(form.get("quantity"), default=1)
        in_cart = visit.session.cart.quantities.get(product.id, 0)
        await _check_stock(visit, product, in_cart + quantity, in_cart=in_cart)
        visit.session.cart.add(product.id, quantity)
    except (CartLimitReached, InvalidQuantity) as error:
        return await _answer(visit, back, f"Not added: {error}", ok=False)
    return await _answer(visit, back, f"Added {product.name} to your cart.", ok=True)


@router.post("/cart/items/{product_id}")
async def change_cart_line(visit: VisitDep, product_id: str) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    cart = visit.session.cart
    if product_id not in cart.quantities:
        return await _answer(visit, "/cart", f"Not changed: {NotInCart.MESSAGE}", ok=False)
    try:
        quantity = _quantity(form.get("quantity"), default=0)
        if quantity > cart.quantities[product_id]:
            product = await visit.shop.catalog.product(product_id)
            await _check_stock(visit, product, quantity, in_cart=cart.quantities[product_id])
        cart.change(product_id, quantity)
    except (CartLimitReached, InvalidQuantity) as error:
        return await _answer(visit, "/cart", f"Not changed: {error}", ok=False)
    return await _answer(visit, "/cart", "Removed from your cart." if not quantity else "", ok=True)


async def _check_stock(visit: Visit, product: Product, wanted: int, *, in_cart: int) -> None:
    """Raises CartLimitReached when fewer than ``wanted`` are in stock; an inventory that
    cannot say lets the order's own reservation decide."""
    available = await pages.stock_of(visit.shop.stock, product)
    if available is None or wanted <= available:
        return
    if available == 0:
        raise CartLimitReached(f"{product.name} has sold out")
    have = f"; you have {in_cart} in your cart" if in_cart else ""
    raise CartLimitReached(f"only {available} of {product.name} left{have}")


async def _answer(visit: Visit, back: str, notice: str, *, ok: bool) -> Response:
    """A cart change's answer: JSON for the page's script (it stays where it is), else See
    Other back to the page, with the notice shown there."""
    if "application/json" in visit.request.headers.get("accept", ""):
        body = {"ok": ok, "notice": notice, "cart_count": visit.session.cart.count}
        return await visit.respond(JSONResponse(body, status_code=200 if ok else 409))
    if notice:
        visit.session.flash(notice + ("" if notice.endswith(".") else "."))
    return await visit.redirect(back)


def _back_to(value: object, default: str) -> str:
    """Where a form sends the shopper back: a path of this shop's, else ``default``."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


def _cents(value: str | None) -> int | None:
    """A price typed in euros (already matched by PRICE_PATTERN) in cents; blank is None."""
    text = (value or "").strip().replace(",", ".")
    if not text:
        return None
    units, _, cents = text.partition(".")
    return int(units) * 100 + int((cents + "00")[:2])


@router.get("/checkout")
async def delivery_step(visit: VisitDep) -> Response:
    """The checkout's first step: where and how the order travels, and the card."""
    if not visit.session.signed_in:
        return await visit.redirect("/auth/sign-in?return_to=/checkout")
    if visit.session.cart.is_empty:
        return await visit.redirect("/cart")
    return await _delivery_page(visit, DeliveryForm({}, {}), card="")


@router.post("/checkout/delivery")
async def change_delivery(visit: VisitDep) -> Response:
    """Back from the review to the delivery step, with what was entered."""
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    entered = read_delivery(form)
    return await _delivery_page(visit, DeliveryForm(entered.values, {}), card=_card(form))


@router.post("/checkout/review")
async def review_step(visit: VisitDep) -> Response:
    """The delivery step's answer: its errors field by field, or the order to review."""
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    entered, card = read_delivery(form), _card(form)
    delivery = entered.delivery
    if delivery is None or card not in TEST_CARDS:
        return await _delivery_page(visit, entered, card=card, status_code=422)
    shop = visit.shop
    view = await pages.cart_view(shop.catalog, shop.stock, visit.session.cart)
    if not view.items or view.problems:
        for problem in view.problems:
            visit.session.flash(problem)
        return await visit.redirect("/cart")
    prices = await orders.delivery_prices(shop.customer(visit.session), shop.orders)
    delivery = replace(delivery, price=prices.get(delivery.option))
    return await visit.page(
        "review.html",
        view=view,
        delivery=delivery,
        total=pages.with_delivery(view.total, delivery.price),
        card=card,
        card_label=TEST_CARDS[card],
    )


@router.post("/checkout")
async def checkout(visit: VisitDep) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    card = _card(form)
    delivery = None
    if has_delivery(form):  # the review step's form; an older page's form has none
        entered = read_delivery(form)
        delivery = entered.delivery
        if delivery is None or card not in TEST_CARDS:
            return await _delivery_page(visit, entered, card=card, status_code=422)
    if card not in TEST_CARDS:
        visit.session.flash("Choose a card to pay with.")
        return await visit.redirect("/cart")
    # Stock is checked before payment: a line the shop cannot fill goes back to the cart.
    view = await pages.cart_view(visit.shop.catalog, visit.shop.stock, visit.session.cart)
    if view.problems:
        for problem in view.problems:
            visit.session.flash(problem)
        return await visit.redirect("/cart")
    try:
        order = await orders.checkout(
            visit.shop.customer(visit.session),
            visit.shop.orders,
            card_token=card,
            delivery=delivery,
        )
    except CheckoutRefused as error:
        visit.session.flash(f"Your order could not be placed: {error}")
        return await visit.redirect("/cart")
    return await visit.redirect(f"/orders/{order.id}")


async def _delivery_page(
    visit: Visit, form: DeliveryForm, *, card: str, status_code: int = 200
) -> Response:
    card_problem = None if not card or card in TEST_CARDS else "Choose a card to pay with."
    if status_code != 200 and not card:
        card_problem = "Choose a card to pay with."
    prices = await orders.delivery_prices(visit.shop.customer(visit.session), visit.shop.orders)
    return await visit.page(
        "delivery.html",
        status_code,
        form=form,
        card=card if card in TEST_CARDS else "",
        card_problem=card_problem,
        cards=TEST_CARDS,
        options=option_labels(prices),
        countries=COUNTRIES,
    )


def _card(form: Mapping[str, object]) -> str:
    card = form.get("card_token")
    return card if isinstance(card, str) else ""


@router.get("/orders")
async def order_history(visit: VisitDep, page: Page = 1) -> Response:
    shop = visit.shop
    history = await orders.history(
        shop.customer(visit.session),
        shop.orders,
        page=page,
        page_size=shop.settings.orders_per_page,
    )
    return await visit.page("orders.html", history=history)


@router.get("/orders/{order_id}")
async def order_status(visit: VisitDep, order_id: str) -> Response:
    shop = visit.shop
    customer = shop.customer(visit.session)
    view = await orders.order_view(customer, shop.orders, shop.catalog, order_id)
    return await visit.page("order.html", view=view, order=view.order)


@router.get("/orders/{order_id}/status")
async def order_status_json(visit: VisitDep, order_id: str) -> Response:
    """What the order page's script polls: the status, and whether it is final."""
    order = await orders.order(visit.shop.customer(visit.session), visit.shop.orders, order_id)
    body = {"id": order.id, "status": order.status, "settled": order.settled}
    return await visit.respond(JSONResponse(body, headers=PAGE_HEADERS))


def _quantity(value: object, *, default: int) -> int:
    """A form's quantity; anything but a whole number is the default."""
    if not isinstance(value, str) or not value.strip():
        return default
    try:
        return int(value)
    except ValueError as error:
        raise InvalidQuantity(f"{value!r} is not a number") from error
