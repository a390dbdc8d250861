"""Read-only questions about notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from chassis.pagination import Page

if TYPE_CHECKING:
    from notifications.domain.model import Notification
    from notifications.service_layer.ports import UnitOfWork

DEFAULT_PAGE_SIZE: Final = 20
MAX_PAGE_SIZE: Final = 100
MAX_PAGE: Final = 10_000


async def list_notifications(
    uow: UnitOfWork, customer_id: str, *, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> Page[Notification]:
    """A customer's notifications, newest first; page and page size are held within bounds."""
    page = min(max(page, 1), MAX_PAGE)
    page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
    async with uow:
        items, total = await uow.notifications.for_customer(
            customer_id, offset=(page - 1) * page_size, limit=page_size
        )
    return Page(items=items, page=page, page_size=page_size, total=total)
