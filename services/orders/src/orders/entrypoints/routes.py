"""HTTP routes: parse the request, call the service layer, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from chassis.auth import AccessToken
from chassis.customers import require_customer
from chassis.etags import conditional_json
from chassis.idempotency import idempotency_key
from chassis.openapi import links
from chassis.problems import problem_responses
from chassis.requests import public_path
from chassis.unit_of_work import request_unit_of_work
from contracts.events.orders import DELIVERY_OPTIONS
from orders.domain.commands import CancelOrder
from orders.domain.model import Order
from orders.entrypoints.cursors import CURSOR_MAX_LENGTH, cursor_of, position_of
from orders.entrypoints.schemas import (
    Amount,
    DeliveryOptionPublic,
    DeliveryOptions,
    OrderCreate,
    OrderPage,
    OrderPublic,
)
from orders.service_layer import handlers, queries
from orders.service_layer.ports import UnitOfWork
from orders.settings import OrdersSettings

router = APIRouter(tags=["orders"])

Uow = Annotated[UnitOfWork, Depends(request_unit_of_work)]
IdempotencyKey = Annotated[
    str,
    idempotency_key(
        "order", description="A new UUID per order; sending the same request again with it is safe."
    ),
]
# The customer is always the token's subject: a customer places, reads and cancels their own;
# a client's own token (client credentials, no customer signed in) is refused here too.
Reader = Annotated[AccessToken, require_customer("orders:read")]
_ORDER_ID = {"order_id": "$response.body#/id"}
_ORDER_LINKS = {
    "GetOrder": ("get_order_orders__order_id__get", _ORDER_ID),
    "CancelOrder": ("cancel_order_orders__order_id__cancel_post", _ORDER_ID),
}
Writer = Annotated[AccessToken, require_customer("orders:write")]


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderPublic,
    responses={
        200: {"description": "A replay: this key already placed this order", "model": OrderPublic},
        **problem_responses(400, 401, 403, 422),
        # What a client does next with the order: the same links on a replay.
        **links(201, **_ORDER_LINKS),
        **links(200, **_ORDER_LINKS),
    },
    summary="Place an order for the token's subject; its checkout runs in the background",
)
async def place_order(
    *,
    request: Request,
    token: Writer,
    key: IdempotencyKey,
    body: OrderCreate,
    uow: Uow,
) -> Response:
    settings: OrdersSettings = request.app.state.settings
    command = body.to_command(key, token.subject, settings.delivery_price)
    placement = await handlers.place_order(command, uow)
    # A path, as the client outside sees it: never this instance's own address.
    location = public_path(request.headers, f"/orders/{placement.order.id}")
    return conditional_json(
        request,
        _public(placement.order),
        status_code=200 if placement.replayed else 201,
        headers={"Location": location, "Idempotent-Replayed": str(placement.replayed).lower()},
    )


@router.get(
    "/orders/delivery-options",
    response_model=DeliveryOptions,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403),
    },
    summary="The delivery options and what each costs now (API 1.2)",
    description="An order placed with a `delivery` is charged its option's price at the "
    "moment it is placed, as part of its `total`.",
)
async def delivery_options(request: Request, token: Reader) -> Response:  # noqa: ARG001 - a customer's, checked
    settings: OrdersSettings = request.app.state.settings
    options = DeliveryOptions(
        options=[
            DeliveryOptionPublic(
                option=option,
                price=Amount.from_money(settings.delivery_price(option)),
            )
            for option in DELIVERY_OPTIONS
        ]
    )
    return conditional_json(request, options.model_dump(mode="json"))


@router.get(
    "/orders/{order_id}",
    response_model=OrderPublic,
    responses={
        304: {"description": "Not modified (If-None-Match)"},
        **problem_responses(401, 403, 404),
    },
    summary="Get one of the caller's orders, with its checkout's progress and an ETag",
)
async def get_order(request: Request, token: Reader, order_id: str, uow: Uow) -> Response:
    order = await queries.get_order(uow, order_id, token.subject)
    return conditional_json(request, _public(order))


@router.get(
    "/orders",
    response_model=OrderPage,
    responses=problem_responses(400, 401, 403, 422),
    summary="List the caller's orders, newest first",
    description="Offset pages (`page`, `page_size`), or a stable walk: pass each answer's "
    "`next_before` as `before` (with `page` 1) and no order is seen twice or skipped, even "
    "when new orders are placed meanwhile.",
)
async def list_orders(
    *,
    request: Request,
    token: Reader,
    uow: Uow,
    page: Annotated[int, Query(ge=1, le=queries.MAX_PAGE, description="From 1.")] = 1,
    page_size: Annotated[
        int, Query(ge=1, le=queries.MAX_PAGE_SIZE, description="Orders per page.")
    ] = queries.DEFAULT_PAGE_SIZE,
    before: Annotated[
        str | None,
        Query(
            max_length=CURSOR_MAX_LENGTH,
            description="A `next_before` cursor: list only the orders after it (older ones).",
        ),
    ] = None,
) -> Response:
    position = None if before is None else position_of(before)
    result = await queries.list_orders(
        uow, token.subject, page=page, page_size=page_size, before=position
    )
    after = queries.position_after(result)
    listing = OrderPage.from_page(result, next_before=None if after is None else cursor_of(after))
    return conditional_json(request, listing.model_dump(mode="json"))


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderPublic,
    responses=problem_responses(401, 403, 404, 409),
    summary="Cancel one of the caller's pending or confirmed orders; payment and stock are "
    "given back after",
)
async def cancel_order(request: Request, token: Writer, order_id: str, uow: Uow) -> Response:
    command = CancelOrder(order_id=order_id, customer_id=token.subject)
    order = await handlers.cancel_order(command, uow)
    return conditional_json(request, _public(order))


def _public(order: Order) -> dict[str, object]:
    return OrderPublic.from_domain(order).model_dump(mode="json")
