"""Read-only questions about orders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chassis.pagination import Page
from orders.domain.errors import OrderNotFound
from orders.service_layer.ports import ListPosition

if TYPE_CHECKING:
    from orders.domain.model import Order
    from orders.service_layer.ports import UnitOfWork

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
MAX_PAGE: Final = 10_000


async def get_order(uow: UnitOfWork, order_id: str, customer_id: str) -> Order:
    """The customer's order with this id; raises OrderNotFound, for another's order too."""
    async with uow:
        order = await uow.orders.get(order_id)
    # Not found rather than forbidden: whether another customer's order exists is not told.
    if order is None or order.customer_id != customer_id:
        raise OrderNotFound(order_id)
    return order


async def list_orders(
    uow: UnitOfWork,
    customer_id: str,
    *,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    before: ListPosition | None = None,
) -> Page[Order]:
    """A customer's orders, newest first; page and page size are held within bounds.

    With ``before``, the listing starts after that position: only older orders are in it.
    """
    page = min(max(page, 1), MAX_PAGE)
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    async with uow:
        items, total = await uow.orders.for_customer(
            customer_id, offset=(page - 1) * page_size, limit=page_size, before=before
        )
    return Page(items=items, page=page, page_size=page_size, total=total)


def position_after(page: Page[Order]) -> ListPosition | None:
    """Where the listing goes on after ``page``: its last order; None if nothing follows."""
    if page.page >= page.pages or not page.items:
        return None
    last = page.items[-1]
    return ListPosition(created_at=last.created_at, order_id=last.id)
