"""HTTP routes of the mobile app: parse, call the service layer, answer compact JSON.

Every route checks the bearer token itself (zero trust: the gateway checked it too); the
customer is always the token's subject. Reading needs ``orders:read``, changing the cart
``orders:write``: the scopes a customer's app is granted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from bff_mobile.entrypoints import cursors
from bff_mobile.entrypoints.caching import private_json
from bff_mobile.entrypoints.problems import problems
from bff_mobile.entrypoints.schemas import CartOut, HomeOut, OrdersOut, QuantityIn
from bff_mobile.service_layer import carts
from bff_mobile.service_layer.home import Sources, home_screen
from bff_mobile.service_layer.orders import DEFAULT_LIMIT, MAX_LIMIT, orders_page
from bff_mobile.service_layer.ports import Catalog, Orders, UnitOfWork
from bff_mobile.settings import BffMobileSettings
from chassis.auth import AccessToken
from chassis.customers import require_customer
from chassis.openapi import links
from chassis.unit_of_work import request_unit_of_work

router = APIRouter(prefix="/mobile", tags=["mobile"])

_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the If-None-Match tag is current."}
}


def catalog_of(request: Request) -> Catalog:
    client: Catalog = request.app.state.catalog
    return client


def orders_of(request: Request) -> Orders:
    client: Orders = request.app.state.orders
    return client


def settings_of(request: Request) -> BffMobileSettings:
    configured: BffMobileSettings = request.app.state.settings
    return configured


def bearer_token(request: Request) -> str:
    """The caller's own access token, to call orders with; checked before this is used."""
    return request.headers.get("authorization", "").partition(" ")[2].strip()


Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]
CatalogDep = Annotated[Catalog, Depends(catalog_of)]
OrdersDep = Annotated[Orders, Depends(orders_of)]
Settings = Annotated[BffMobileSettings, Depends(settings_of)]
BearerToken = Annotated[str, Depends(bearer_token)]
Reader = Annotated[AccessToken, require_customer("orders:read")]
Writer = Annotated[AccessToken, require_customer("orders:write")]
ProductId = Annotated[str, Path(min_length=1, max_length=100, description="A catalog product.")]


@router.get(
    "/home",
    response_model=HomeOut,
    responses={**_NOT_MODIFIED, **problems(401, 403, 503)},
    summary="The home screen: featured products, categories, cart count, latest order",
    description="One call; the parts are fetched at once, each within a time limit. A part "
    "whose source fails is left empty and named in `degraded`: the screen still answers 200.",
)
async def home(
    *,
    request: Request,
    token: Reader,
    raw_token: BearerToken,
    catalog: CatalogDep,
    orders: OrdersDep,
    uow: Uow,
    settings: Settings,
) -> Response:
    screen = await home_screen(
        Sources(catalog=catalog, orders=orders, uow=uow),
        token.subject,
        raw_token,
        today=datetime.now(UTC).date(),
        featured_count=settings.featured_count,
        part_timeout=settings.part_timeout,
    )
    return private_json(request, token.subject, HomeOut.of(screen))


@router.get(
    "/orders",
    response_model=OrdersOut,
    responses={**_NOT_MODIFIED, **problems(400, 401, 403, 422, 503)},
    summary="The caller's orders, newest first, a page at a time by cursor",
)
async def list_orders(
    *,
    request: Request,
    token: Reader,
    raw_token: BearerToken,
    client: OrdersDep,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=cursors.CURSOR_MAX_LENGTH,
            description="The `next` of the previous page; none for the first page.",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Orders per page.")
    ] = DEFAULT_LIMIT,
) -> Response:
    before = None if cursor is None else cursors.unwrap(cursor)
    page = await orders_page(client, raw_token, limit=limit, before=before)
    next_cursor = None if page.next_before is None else cursors.wrap(page.next_before)
    return private_json(request, token.subject, OrdersOut.of(page, next_cursor))


@router.get(
    "/cart",
    response_model=CartOut,
    responses={**_NOT_MODIFIED, **problems(401, 403, 503)},
    summary="The caller's cart",
)
async def get_cart(request: Request, token: Reader, uow: Uow) -> Response:
    cart = await carts.cart_of(uow, token.subject)
    return private_json(request, token.subject, CartOut.of(cart))


@router.put(
    "/cart/items/{product_id}",
    response_model=CartOut,
    responses={
        **problems(401, 403, 404, 409, 422, 503),
        **links(
            200,
            RemoveCartItem=(
                "delete_cart_item_mobile_cart_items__product_id__delete",
                {"product_id": "$request.path.product_id"},
            ),
        ),
    },
    summary="Put a product in the caller's cart at a quantity (replacing the one it had)",
)
async def put_cart_item(
    *,
    request: Request,
    token: Writer,
    product_id: ProductId,
    body: QuantityIn,
    uow: Uow,
    catalog: CatalogDep,
) -> Response:
    cart = await carts.put_item(
        uow, catalog, token.subject, product_id, body.qty, at=datetime.now(UTC)
    )
    return private_json(request, token.subject, CartOut.of(cart))


@router.delete(
    "/cart/items/{product_id}",
    response_model=CartOut,
    # 404: an id no route takes (one with a slash in it, say).
    responses=problems(401, 403, 404, 422),
    summary="Take a product out of the caller's cart; safe to repeat",
)
async def delete_cart_item(
    request: Request, token: Writer, product_id: ProductId, uow: Uow
) -> Response:
    cart = await carts.remove_item(uow, token.subject, product_id)
    return private_json(request, token.subject, CartOut.of(cart))
