"""The shop's pages and forms: browse, product, cart, checkout, orders.

Routes are thin: read the request, ask the service layer, render a template. Every POST
checks its CSRF token first and answers See Other, so a reload never sends it again.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, Response

from bff_web.domain.errors import CartLimitReached, CheckoutRefused, InvalidQuantity, NotInCart
from bff_web.entrypoints.csrf import checked_form
from bff_web.entrypoints.visits import PAGE_HEADERS, VisitDep
from bff_web.service_layer import orders, pages

router = APIRouter(include_in_schema=False)

# The payment simulators' test cards: what the checkout form offers instead of a card number.
TEST_CARDS: Final = {"tok_ok": "Test card — accepted", "tok_decline": "Test card — declined"}
ORDERS_PER_PAGE: Final = 10
MAX_PAGE: Final = 1000
SEARCH_MAX_LENGTH: Final = 100

Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]


@router.get("/")
async def storefront(
    visit: VisitDep,
    category: Annotated[str | None, Query(max_length=60, pattern=r"^[a-z0-9-]*$")] = None,
    q: Annotated[str | None, Query(max_length=SEARCH_MAX_LENGTH)] = None,
    page: Page = 1,
) -> Response:
    front = await pages.storefront(
        visit.shop.catalog,
        category=category or None,
        query=(q or "").strip() or None,
        page=page,
        page_size=visit.shop.settings.products_per_page,
    )
    return await visit.page("storefront.html", front=front)


@router.get("/products/{product_id}")
async def product(visit: VisitDep, product_id: str) -> Response:
    view = await pages.product_view(visit.shop.catalog, visit.shop.stock, product_id)
    return await visit.page("product.html", view=view)


@router.get("/cart")
async def cart(visit: VisitDep) -> Response:
    view = await pages.cart_view(visit.shop.catalog, visit.session.cart)
    return await visit.page("cart.html", view=view, cards=TEST_CARDS)


@router.post("/cart/items")
async def add_to_cart(visit: VisitDep) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    product_id = str(form.get("product_id") or "")
    # The product must exist: a cart holds only what the shop sells.
    product = await visit.shop.catalog.product(product_id)
    try:
        visit.session.cart.add(product.id, _quantity(form.get("quantity"), default=1))
    except (CartLimitReached, InvalidQuantity) as error:
        visit.session.flash(f"Not added: {error}.")
        return await visit.redirect(f"/products/{product.id}")
    visit.session.flash(f"Added {product.name} to your cart.")
    return await visit.redirect("/cart")


@router.post("/cart/items/{product_id}")
async def change_cart_line(visit: VisitDep, product_id: str) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    try:
        visit.session.cart.change(product_id, _quantity(form.get("quantity"), default=0))
    except (CartLimitReached, InvalidQuantity, NotInCart) as error:
        visit.session.flash(f"Not changed: {error}.")
    return await visit.redirect("/cart")


@router.post("/checkout")
async def checkout(visit: VisitDep) -> Response:
    form = await checked_form(visit.request, visit.session, visit.shop.settings.public_url)
    card = str(form.get("card_token") or "")
    if card not in TEST_CARDS:
        visit.session.flash("Choose a card to pay with.")
        return await visit.redirect("/cart")
    try:
        order = await orders.checkout(
            visit.shop.customer(visit.session), visit.shop.orders, card_token=card
        )
    except CheckoutRefused as error:
        visit.session.flash(f"Your order could not be placed: {error}")
        return await visit.redirect("/cart")
    visit.session.flash("Thank you! Your order is placed; we are confirming it now.")
    return await visit.redirect(f"/orders/{order.id}")


@router.get("/orders")
async def order_history(visit: VisitDep, page: Page = 1) -> Response:
    history = await orders.history(
        visit.shop.customer(visit.session), visit.shop.orders, page=page, page_size=ORDERS_PER_PAGE
    )
    return await visit.page("orders.html", history=history)


@router.get("/orders/{order_id}")
async def order_status(visit: VisitDep, order_id: str) -> Response:
    order = await orders.order(visit.shop.customer(visit.session), visit.shop.orders, order_id)
    return await visit.page("order.html", order=order)


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
