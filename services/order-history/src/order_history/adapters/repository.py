"""Repositories over order-history's tables, implementing the service layer's ports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CursorResult, delete, func, insert, select, update

from chassis.messaging import Message
from contracts.events import Delivery, OrderItem, PricedItem, StockLine
from contracts.money import Money
from order_history.adapters.orm import archived_events, order_views, products, projection
from order_history.domain.model import (
    OrderStatus,
    OrderView,
    Payment,
    PaymentState,
    Product,
    Stock,
    StockState,
)
from order_history.service_layer.ports import Archived

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncSession

PROJECTION_ROW = 1


class SqlAlchemyEventArchive:
    """Archived messages in the ``archived_events`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def holds(self, message_id: str) -> bool:
        found = await self._session.scalar(
            select(archived_events.c.seq).where(archived_events.c.message_id == message_id)
        )
        return found is not None

    async def add(self, message: Message) -> None:
        await self._session.execute(
            insert(archived_events).values(
                message_id=message.message_id,
                topic=message.topic,
                key=message.key,
                event_type=message.event_type,
                schema_version=message.schema_version,
                payload=message.payload,
                archived_at=datetime.now(UTC),
            )
        )

    async def count(self) -> int:
        return await self._session.scalar(select(func.count()).select_from(archived_events)) or 0

    async def after(self, seq: int, *, limit: int) -> list[Archived]:
        rows = await self._session.execute(
            select(archived_events)
            .where(archived_events.c.seq > seq)
            .order_by(archived_events.c.seq)
            .limit(limit)
        )
        return [
            Archived(
                seq=row.seq,
                message=Message(
                    topic=row.topic,
                    key=row.key,
                    event_type=row.event_type,
                    payload=row.payload,
                    schema_version=row.schema_version,
                    message_id=row.message_id,
                ),
            )
            for row in rows
        ]


class SqlAlchemyOrderViews:
    """Order views in the ``order_views`` table, one JSON document each."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, order_id: str) -> OrderView | None:
        document = await self._session.scalar(
            select(order_views.c.document).where(order_views.c.order_id == order_id)
        )
        return None if document is None else view_from(document)

    async def save(self, view: OrderView) -> None:
        row = _row(view)
        changed = await self._session.execute(
            update(order_views).where(order_views.c.order_id == view.order_id).values(**row)
        )
        if _none_changed(changed):
            await self._session.execute(insert(order_views).values(order_id=view.order_id, **row))

    async def replace_all(self, views: Iterable[OrderView]) -> None:
        await self._session.execute(delete(order_views))
        rows = [{"order_id": view.order_id, **_row(view)} for view in views]
        if rows:
            await self._session.execute(insert(order_views), rows)

    async def for_customer(
        self, customer_id: str, *, offset: int, limit: int
    ) -> tuple[list[OrderView], int]:
        listed = (order_views.c.customer_id == customer_id, order_views.c.status.is_not(None))
        total = await self._session.scalar(
            select(func.count()).select_from(order_views).where(*listed)
        )
        documents = await self._session.scalars(
            select(order_views.c.document)
            .where(*listed)
            .order_by(order_views.c.placed_at.desc(), order_views.c.order_id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [view_from(document) for document in documents], total or 0


class SqlAlchemyProducts:
    """Products as last told, in the ``products`` table."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, product_id: str) -> Product | None:
        row = (
            await self._session.execute(select(products).where(products.c.product_id == product_id))
        ).one_or_none()
        return None if row is None else _product(row)

    async def save(self, product: Product) -> None:
        values = {"sku": product.sku, "name": product.name, "version": product.version}
        changed = await self._session.execute(
            update(products).where(products.c.product_id == product.product_id).values(**values)
        )
        if _none_changed(changed):
            await self._session.execute(
                insert(products).values(product_id=product.product_id, **values)
            )

    async def replace_all(self, told: Iterable[Product]) -> None:
        await self._session.execute(delete(products))
        rows = [
            {"product_id": p.product_id, "sku": p.sku, "name": p.name, "version": p.version}
            for p in told
        ]
        if rows:
            await self._session.execute(insert(products), rows)

    async def some(self, product_ids: Iterable[str]) -> dict[str, Product]:
        wanted = sorted(set(product_ids))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(products).where(products.c.product_id.in_(wanted))
        )
        return {row.product_id: _product(row) for row in rows}


class SqlAlchemyProjection:
    """The one row of the ``projection`` table, which writers update first to hold the model."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock(self) -> None:
        # A write, not a read: it takes PostgreSQL's row lock and SQLite's write lock at once,
        # so two writers never both read first and then deadlock upgrading their locks.
        await self._session.execute(
            update(projection)
            .where(projection.c.id == PROJECTION_ROW)
            .values(rebuilds=projection.c.rebuilds)
        )

    async def rebuilt(self, at: datetime) -> None:
        await self._session.execute(
            update(projection)
            .where(projection.c.id == PROJECTION_ROW)
            .values(rebuilds=projection.c.rebuilds + 1, rebuilt_at=at)
        )


def _none_changed(result: object) -> bool:
    return isinstance(result, CursorResult) and result.rowcount == 0


def _row(view: OrderView) -> dict[str, Any]:
    return {
        "customer_id": view.customer_id,
        "status": None if view.status is None else view.status.value,
        "placed_at": view.placed_at,
        "document": document_of(view),
    }


def document_of(view: OrderView) -> dict[str, Any]:
    """The JSON document of ``view``: everything the view knows, to be read back whole."""
    return {
        "order_id": view.order_id,
        "customer_id": view.customer_id,
        "status": None if view.status is None else view.status.value,
        "placed_at": _iso(view.placed_at),
        "updated_at": _iso(view.updated_at),
        "reason": view.reason,
        "total": None if view.total is None else view.total.to_dict(),
        "ordered": [{"product_id": i.product_id, "quantity": i.quantity} for i in view.ordered],
        "priced": [
            {
                "product_id": i.product_id,
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "unit_price": i.unit_price.to_dict(),
            }
            for i in view.priced
        ],
        "payment": None
        if view.payment is None
        else {
            "state": view.payment.state.value,
            "amount": view.payment.amount.to_dict(),
            "reason": view.payment.reason,
        },
        "stock": None
        if view.stock is None
        else {
            "state": view.stock.state.value,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in view.stock.lines],
        },
        "delivery": None if view.delivery is None else _delivery_document(view.delivery),
    }


def _delivery_document(delivery: Delivery) -> dict[str, str]:
    return {
        "name": delivery.name,
        "address": delivery.address,
        "postcode": delivery.postcode,
        "city": delivery.city,
        "country": delivery.country,
        "option": delivery.option,
    }


def view_from(document: dict[str, Any]) -> OrderView:
    """The view a document of :func:`document_of` holds."""
    payment, stock = document["payment"], document["stock"]
    return OrderView(
        order_id=document["order_id"],
        customer_id=document["customer_id"],
        status=None if document["status"] is None else OrderStatus(document["status"]),
        placed_at=_moment(document["placed_at"]),
        updated_at=_moment(document["updated_at"]),
        reason=document["reason"],
        total=None if document["total"] is None else _money(document["total"]),
        ordered=tuple(OrderItem(i["product_id"], i["quantity"]) for i in document["ordered"]),
        priced=tuple(
            PricedItem(i["product_id"], i["sku"], i["name"], i["quantity"], _money(i["unit_price"]))
            for i in document["priced"]
        ),
        payment=None
        if payment is None
        else Payment(PaymentState(payment["state"]), _money(payment["amount"]), payment["reason"]),
        stock=None
        if stock is None
        else Stock(
            StockState(stock["state"]),
            tuple(StockLine(line["sku"], line["quantity"]) for line in stock["lines"]),
        ),
        # A document stored before deliveries (issue 18) has no such key: no delivery.
        delivery=None if document.get("delivery") is None else Delivery(**document["delivery"]),
    )


def _product(row: Row[Any]) -> Product:
    return Product(row.product_id, row.sku, row.name, row.version)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _money(value: dict[str, Any]) -> Money:
    return Money(value["amount"], value["currency"])
