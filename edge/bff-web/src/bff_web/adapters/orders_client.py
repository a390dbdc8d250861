"""Orders' REST API as the signed-in customer: ``POST /orders``, ``GET /orders[/{id}]``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from bff_web.domain.delivery import FIELDS, Delivery
from bff_web.domain.errors import CheckoutRefused, OrderNotFound, SignInRequired
from bff_web.domain.shop import Money, Order, OrderLine, OrderPage
from chassis.answers import read_answer

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bff_web.domain.cart import CartLine
    from chassis.upstream import Answer, HttpUpstream

# Orders' answers to a request it will not take as sent; their detail is for the customer.
_REFUSALS = frozenset({400, 409, 422})


class OrdersClient:
    """Implements the Orders port; every call carries the customer's access token."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    async def place(
        self,
        access_token: str,
        lines: Sequence[CartLine],
        *,
        card_token: str,
        key: str,
        delivery: Delivery | None = None,
    ) -> Order:
        body: dict[str, Any] = {
            "items": [{"product_id": line.product_id, "quantity": line.quantity} for line in lines],
            "payment": {"card_token": card_token},
        }
        if delivery is not None:  # orders API 1.1; without it, the request is 1.0's
            body["delivery"] = delivery.to_json()
        headers = {**_bearer(access_token), "Idempotency-Key": key}
        answer = await self._upstream.call("POST", "/orders", body=body, headers=headers)
        if answer.status in _REFUSALS:
            raise CheckoutRefused(answer.problem_detail())
        self._check(answer, "POST", "/orders", 200, 201)
        return read_answer(self._upstream.name, "POST", "/orders", lambda: _order(answer.body))

    async def delivery_prices(self, access_token: str) -> dict[str, Money]:
        """What each delivery option costs now (orders API 1.2)."""
        path = "/orders/delivery-options"
        answer = await self._upstream.call("GET", path, headers=_bearer(access_token))
        self._check(answer, "GET", path, 200)
        body = answer.body
        return read_answer(
            self._upstream.name,
            "GET",
            path,
            lambda: {
                str(item["option"]): Money(
                    int(item["price"]["amount"]), str(item["price"]["currency"])
                )
                for item in body["options"]
            },
        )

    async def order(self, access_token: str, order_id: str) -> Order:
        path = f"/orders/{quote(order_id, safe='')}"
        answer = await self._upstream.call("GET", path, headers=_bearer(access_token))
        if answer.status == 404:
            raise OrderNotFound(order_id)
        self._check(answer, "GET", path, 200)
        return read_answer(self._upstream.name, "GET", path, lambda: _order(answer.body))

    async def orders(self, access_token: str, *, page: int, page_size: int) -> OrderPage:
        path = f"/orders?{urlencode({'page': page, 'page_size': page_size})}"
        answer = await self._upstream.call("GET", path, headers=_bearer(access_token))
        self._check(answer, "GET", path, 200)
        body = answer.body
        return read_answer(
            self._upstream.name,
            "GET",
            path,
            lambda: OrderPage(
                items=[_order(item) for item in body["items"]],
                page=int(body["page"]),
                pages=int(body["pages"]),
                total=int(body["total"]),
            ),
        )

    def _check(self, answer: Answer, method: str, path: str, *expected: int) -> None:
        if answer.status == 401:
            # The token lapsed or its grant was revoked elsewhere: the customer signs in again.
            raise SignInRequired("your sign-in has expired")
        if answer.status not in expected:
            raise self._upstream.unexpected(method, path, answer)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def _money(body: Any) -> Money | None:
    return None if body is None else Money(int(body["amount"]), str(body["currency"]))


def _order(body: Any) -> Order:
    return Order(
        id=str(body["id"]),
        status=str(body["status"]),
        lines=[
            OrderLine(
                product_id=str(line["product_id"]),
                name=line.get("name"),
                quantity=int(line["quantity"]),
                line_total=_money(line.get("line_total")),
            )
            for line in body["items"]
        ],
        total=_money(body.get("total")),
        reason=body.get("reason"),
        created_at=datetime.fromisoformat(str(body["created_at"])),
        delivery=_delivery(body.get("delivery")),
        payment_id=body.get("payment_id"),
    )


def _delivery(body: Any) -> Delivery | None:
    """An order's delivery (orders API 1.1) and its price (1.2; none for an order placed when
    deliveries were free); None when placed without one, or from 1.0."""
    if body is None:
        return None
    return Delivery(
        **{field: str(body[field]) for field in FIELDS}, price=_money(body.get("price"))
    )
