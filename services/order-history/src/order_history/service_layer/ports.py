"""What the service layer needs from storage, as protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chassis import unit_of_work

if TYPE_CHECKING:
    from datetime import datetime

    from chassis.messaging import Message
    from contracts.events import ProductCreated, ProductUpdated
    from order_history.domain.model import OrderView, Product


@dataclass(frozen=True, slots=True)
class Archived:
    """A message of the archive and its place in it: ``seq`` grows in the order of arrival."""

    seq: int
    message: Message


class EventArchive(Protocol):
    """Every message order-history took in, kept for good: what a rebuild reads again."""

    async def holds(self, message_id: str) -> bool:
        """Whether the message is archived already (so it had its effect)."""

    async def add(self, message: Message) -> None:
        """Archive the message, in the transaction of its effect on the read model."""

    async def count(self) -> int:
        """How many messages the archive holds."""

    async def after(self, seq: int, *, limit: int) -> list[Archived]:
        """Up to ``limit`` messages that arrived after ``seq``, in the order they arrived."""


class OrderViews(Protocol):
    async def get(self, order_id: str) -> OrderView | None:
        """The view of the order, or None if no event of it has been seen."""

    async def save(self, view: OrderView) -> None:
        """Store the view, new or changed."""

    async def replace_all(self, views: Iterable[OrderView]) -> None:
        """Forget every view and store these instead."""

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int
    ) -> tuple[list[OrderView], int]:
        """One slice of a customer's listed orders, latest placed first, and how many in all."""


class Products(Protocol):
    async def get(self, product_id: str) -> Product | None:
        """The product as last told, or None."""

    async def save(self, product: Product) -> None:
        """Store the product, new or at a later version."""

    async def replace_all(self, products: Iterable[Product]) -> None:
        """Forget every product and store these instead."""

    async def some(self, product_ids: Iterable[str]) -> dict[str, Product]:
        """The known products among ``product_ids``, by id."""


class Projection(Protocol):
    """The read model as a whole: one writer at a time, live or rebuilding."""

    async def lock(self) -> None:
        """Hold the read model until the transaction ends: a live event waits for a rebuild
        to finish, and a rebuild for the events being taken in."""

    async def rebuilt(self, at: datetime) -> None:
        """Note that the read model was rebuilt from the archive at ``at``."""


class UnitOfWork(unit_of_work.UnitOfWork, Protocol):
    """One transaction over order-history's storage; leaving it without ``commit`` rolls back.

    A unit of work may be entered again after it is left, for another transaction.
    """

    @property
    def archive(self) -> EventArchive: ...

    @property
    def orders(self) -> OrderViews: ...

    @property
    def products(self) -> Products: ...

    @property
    def projection(self) -> Projection: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class Catalog(Protocol):
    """The catalog's own listing of its products: what was published before order-history
    first subscribed is learnt from it."""

    async def products(self) -> list[ProductCreated | ProductUpdated]:
        """Every product as the catalog lists it now, as the event of its current version.

        Raises UpstreamFailure if the catalog gives no usable answer.
        """
