"""Orders' REST API, read with the customer's own token, implementing the Orders port."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from bff_mobile.domain.errors import InvalidCursor, TokenRefused
from bff_mobile.domain.model import OrdersPage, OrderSummary
from chassis.answers import read_answer
from contracts import Money

if TYPE_CHECKING:
    from chassis.upstream import HttpUpstream


class OrdersClient:
    """Reads ``GET /orders`` page by page through its keyset cursor (``before``)."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self._upstream = upstream

    async def page(self, token: str, *, limit: int, before: str | None) -> OrdersPage:
        query: dict[str, str | int] = {"page_size": limit}
        if before is not None:
            query["before"] = before
        path = "/orders?" + urlencode(query)
        # Zero trust: orders checks the customer's token again and lists only their orders.
        answer = await self._upstream.call(
            "GET", path, headers={"Authorization": f"Bearer {token}"}
        )
        # Orders refuses a cursor it did not make (400), or one too long to be one (422).
        if before is not None and (
            answer.problem_type() == "invalid-cursor" or answer.status == 422
        ):
            raise InvalidCursor
        if answer.status == 401:
            raise TokenRefused(self._upstream.name)
        if answer.status != 200:
            raise self._upstream.unexpected("GET", path, answer)
        body = answer.body
        return read_answer(
            self._upstream.name,
            "GET",
            path,
            lambda: OrdersPage(
                items=[_summary(item) for item in body["items"]],
                next_before=_optional_str(body["next_before"]),
            ),
        )


def _summary(item: Any) -> OrderSummary:
    total = item["total"]
    return OrderSummary(
        id=str(item["id"]),
        status=str(item["status"]),
        total=None if total is None else Money(total["amount"], total["currency"]),
        item_count=sum(int(line["quantity"]) for line in item["items"]),
        created_at=datetime.fromisoformat(item["created_at"]),
    )


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("a cursor is a string")
    return value
