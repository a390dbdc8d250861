"""Read-only questions, answered from the read model alone: never from another service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from chassis.pagination import Page

if TYPE_CHECKING:
    from order_history.domain.model import Line, OrderView
    from order_history.service_layer.ports import UnitOfWork

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
MAX_PAGE: Final = 10_000


@dataclass(frozen=True, slots=True)
class PastOrder:
    """An order of the history with its lines named (by the checkout, else by the catalog)."""

    view: OrderView
    lines: tuple[Line, ...]


async def orders_of(
    uow: UnitOfWork, customer_id: str, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> Page[PastOrder]:
    """A customer's orders, latest placed first; page and page size are held within bounds."""
    page = min(max(page, 1), MAX_PAGE)
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    async with uow:
        views, total = await uow.orders.for_customer(
            customer_id, offset=(page - 1) * page_size, limit=page_size
        )
        products = await uow.products.some(
            {line.product_id for view in views for line in view.lines}
        )
    items = [
        PastOrder(view, tuple(line.named(products.get(line.product_id)) for line in view.lines))
        for view in views
    ]
    return Page(items=items, page=page, page_size=page_size, total=total)
