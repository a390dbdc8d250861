"""The carts in the ``cart_lines`` table, implementing the service layer's CartRepository."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from bff_mobile.adapters.orm import cart_lines
from bff_mobile.domain.cart import Cart, CartLine
from contracts import Money

if TYPE_CHECKING:
    from sqlalchemy import Executable, Row
    from sqlalchemy.ext.asyncio import AsyncSession

_KEY = ("customer_id", "product_id")


class SqlAlchemyCartRepository:
    """A cart is its lines; each write touches one line, so two phones of one customer
    changing different products at once never undo each other."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, customer_id: str) -> Cart:
        rows = await self._session.execute(
            select(cart_lines)
            .where(cart_lines.c.customer_id == customer_id)
            .order_by(cart_lines.c.added_at, cart_lines.c.product_id)
        )
        return Cart(customer_id=customer_id, lines=[_line(row) for row in rows])

    async def put(self, customer_id: str, line: CartLine) -> None:
        changes = {
            "name": line.name,
            "unit_price": line.unit_price.amount,
            "currency": str(line.unit_price.currency),
            "quantity": line.quantity,
        }
        row = {
            "customer_id": customer_id,
            "product_id": line.product_id,
            "added_at": line.added_at,
            **changes,
        }
        dialect = self._session.get_bind().dialect.name
        await self._session.execute(_upsert(dialect, row, changes))

    async def remove(self, customer_id: str, product_id: str) -> None:
        await self._session.execute(
            delete(cart_lines).where(
                cart_lines.c.customer_id == customer_id, cart_lines.c.product_id == product_id
            )
        )


def _upsert(dialect: str, row: dict[str, Any], changes: dict[str, Any]) -> Executable:
    """An insert that updates the line instead when the customer has the product already.

    Not read-then-write: two first puts of one product at once still end in one row.
    """
    if dialect == "postgresql":
        return (
            postgresql.insert(cart_lines)
            .values(row)
            .on_conflict_do_update(index_elements=_KEY, set_=changes)
        )
    return (
        sqlite.insert(cart_lines)
        .values(row)
        .on_conflict_do_update(index_elements=_KEY, set_=changes)
    )


def _line(row: Row[Any]) -> CartLine:
    return CartLine(
        product_id=row.product_id,
        name=row.name,
        unit_price=Money(row.unit_price, row.currency),
        quantity=row.quantity,
        added_at=row.added_at,
    )
