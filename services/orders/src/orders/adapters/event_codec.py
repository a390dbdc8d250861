"""The Order's events as its stream stores them, and its snapshots.

The four events the ``orders`` topic publishes are stored as their ``contracts`` form (the
JSON consumers read is the JSON the stream holds, so the two cannot disagree) and read back
through ``contracts.events.decode``, which upcasts older schema versions. The saga's own
events (priced, step begun, step recorded, imported) are orders' private types.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, assert_never

from chassis.eventstore import NewEvent, RecordedEvent
from contracts import Money
from contracts.events import decode, timestamp
from contracts.events import orders as published
from orders.domain.events import (
    Event,
    OrderCancelled,
    OrderConfirmed,
    OrderImported,
    OrderLine,
    OrderPlaced,
    OrderPriced,
    OrderRejected,
    StepBegun,
    StepRecord,
    StepRecorded,
)
from orders.domain.model import Order
from orders.domain.saga import Outcome, Step

if TYPE_CHECKING:
    from collections.abc import Mapping

ORDER_PRICED: Final = "OrderPriced"
STEP_BEGUN: Final = "CheckoutStepBegun"
STEP_RECORDED: Final = "CheckoutStepRecorded"
ORDER_IMPORTED: Final = "OrderImported"


class OrderEvents:
    """The event codec of the Order's stream."""

    def encode(self, event: Event) -> NewEvent:
        match event:
            case OrderPlaced() | OrderConfirmed() | OrderRejected() | OrderCancelled():
                contract = contract_event(event)
                return NewEvent(
                    contract.event_type, contract.to_dict(), schema_version=contract.schema_version
                )
            case OrderPriced():
                data: dict[str, Any] = {
                    "order_id": event.order_id,
                    "lines": [_line(line) for line in event.lines],
                    "at": event.at.isoformat(),
                }
                return NewEvent(ORDER_PRICED, data)
            case StepBegun():
                data = {
                    "order_id": event.order_id,
                    "step": str(event.step),
                    "deadline": None if event.deadline is None else event.deadline.isoformat(),
                    "at": event.at.isoformat(),
                }
                return NewEvent(STEP_BEGUN, data)
            case StepRecorded():
                data = {
                    "order_id": event.order_id,
                    **_record(event.record),
                    "payment_id": event.payment_id,
                }
                return NewEvent(STEP_RECORDED, data)
            case OrderImported():
                return NewEvent(ORDER_IMPORTED, {"order_id": event.order_id, **_state(event)})
            case _:
                assert_never(event)

    def decode(self, event: RecordedEvent) -> Event:
        data = event.data
        if event.event_type == ORDER_PRICED:
            return OrderPriced(
                order_id=data["order_id"],
                lines=tuple(_line_from(line) for line in data["lines"]),
                at=datetime.fromisoformat(data["at"]),
            )
        if event.event_type == STEP_BEGUN:
            deadline = data["deadline"]
            return StepBegun(
                order_id=data["order_id"],
                step=Step(data["step"]),
                deadline=None if deadline is None else datetime.fromisoformat(deadline),
                at=datetime.fromisoformat(data["at"]),
            )
        if event.event_type == STEP_RECORDED:
            return StepRecorded(
                order_id=data["order_id"], record=_record_from(data), payment_id=data["payment_id"]
            )
        if event.event_type == ORDER_IMPORTED:
            return imported(data["order_id"], data)
        # Through decode, so events stored under an older schema version are upcast.
        return _domain_event(decode(event.event_type, event.schema_version, json.dumps(data)))


class OrderSnapshots:
    """The snapshot codec. Bump ``format`` whenever the Order's state changes shape."""

    format: Final = 1

    def state_of(self, order: Order) -> Mapping[str, Any]:
        return _state(
            OrderImported(
                order_id=order.id,
                customer_id=order.customer_id,
                lines=tuple(order.lines),
                status=str(order.status),
                reason=order.reason,
                last_error=order.last_error,
                payment_id=order.payment_id,
                step_in_progress=order.step_in_progress,
                step_deadline=order.step_deadline,
                steps=tuple(order.steps),
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )

    def restore(self, order_id: str, version: int, state: Mapping[str, Any]) -> Order:
        order = Order(order_id)
        order.apply(imported(order_id, state))
        order.version = version
        return order


def contract_event(
    event: OrderPlaced | OrderConfirmed | OrderRejected | OrderCancelled,
) -> (
    published.OrderPlaced
    | published.OrderConfirmed
    | published.OrderRejected
    | (published.OrderCancelled)
):
    """``event`` as the ``orders`` topic carries it."""
    match event:
        case OrderPlaced():
            return published.OrderPlaced(
                order_id=event.order_id,
                customer_id=event.customer_id,
                items=tuple(published.OrderItem(p, q) for p, q in event.items),
                occurred_at=timestamp(event.at),
            )
        case OrderConfirmed():
            return published.OrderConfirmed(
                order_id=event.order_id,
                customer_id=event.customer_id,
                items=tuple(_priced_item(event.order_id, line) for line in event.lines),
                total=event.total,
                occurred_at=timestamp(event.at),
            )
        case OrderRejected():
            return published.OrderRejected(
                order_id=event.order_id,
                customer_id=event.customer_id,
                reason=event.reason,
                occurred_at=timestamp(event.at),
            )
        case OrderCancelled():
            return published.OrderCancelled(
                order_id=event.order_id,
                customer_id=event.customer_id,
                was_confirmed=event.was_confirmed,
                total=event.total,
                occurred_at=timestamp(event.at),
            )
        case _:
            assert_never(event)


def _domain_event(event: object) -> Event:
    match event:
        case published.OrderPlaced():
            return OrderPlaced(
                order_id=event.order_id,
                customer_id=event.customer_id,
                items=tuple((item.product_id, item.quantity) for item in event.items),
                at=datetime.fromisoformat(event.occurred_at),
            )
        case published.OrderConfirmed():
            return OrderConfirmed(
                order_id=event.order_id,
                customer_id=event.customer_id,
                lines=tuple(
                    OrderLine(i.product_id, i.quantity, i.sku, i.name, i.unit_price)
                    for i in event.items
                ),
                total=event.total,
                at=datetime.fromisoformat(event.occurred_at),
            )
        case published.OrderRejected():
            return OrderRejected(
                order_id=event.order_id,
                customer_id=event.customer_id,
                reason=event.reason,
                at=datetime.fromisoformat(event.occurred_at),
            )
        case published.OrderCancelled():
            return OrderCancelled(
                order_id=event.order_id,
                customer_id=event.customer_id,
                was_confirmed=event.was_confirmed,
                total=event.total,
                at=datetime.fromisoformat(event.occurred_at),
            )
    raise ValueError(f"an order's stream holds a {type(event).__name__}")


def imported(order_id: str, state: Mapping[str, Any]) -> OrderImported:
    """The OrderImported a snapshot's (or an import's) state describes."""
    deadline = state["step_deadline"]
    in_progress = state["step_in_progress"]
    return OrderImported(
        order_id=order_id,
        customer_id=state["customer_id"],
        lines=tuple(_line_from(line) for line in state["lines"]),
        status=state["status"],
        reason=state["reason"],
        last_error=state["last_error"],
        payment_id=state["payment_id"],
        step_in_progress=None if in_progress is None else Step(in_progress),
        step_deadline=None if deadline is None else datetime.fromisoformat(deadline),
        steps=tuple(_record_from(record) for record in state["steps"]),
        created_at=datetime.fromisoformat(state["created_at"]),
        updated_at=datetime.fromisoformat(state["updated_at"]),
    )


def _state(event: OrderImported) -> dict[str, Any]:
    deadline = event.step_deadline
    return {
        "customer_id": event.customer_id,
        "lines": [_line(line) for line in event.lines],
        "status": event.status,
        "reason": event.reason,
        "last_error": event.last_error,
        "payment_id": event.payment_id,
        "step_in_progress": None if event.step_in_progress is None else str(event.step_in_progress),
        "step_deadline": None if deadline is None else deadline.isoformat(),
        "steps": [_record(record) for record in event.steps],
        "created_at": event.created_at.isoformat(),
        "updated_at": event.updated_at.isoformat(),
    }


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "product_id": line.product_id,
        "quantity": line.quantity,
        "sku": line.sku,
        "name": line.name,
        "unit_price": None if line.unit_price is None else line.unit_price.to_dict(),
    }


def _line_from(data: Mapping[str, Any]) -> OrderLine:
    price = data["unit_price"]
    return OrderLine(
        product_id=data["product_id"],
        quantity=data["quantity"],
        sku=data["sku"],
        name=data["name"],
        unit_price=None if price is None else Money(price["amount"], price["currency"]),
    )


def _record(record: StepRecord) -> dict[str, Any]:
    return {
        "step": str(record.step),
        "outcome": str(record.outcome),
        "detail": record.detail,
        "at": record.at.isoformat(),
    }


def _record_from(data: Mapping[str, Any]) -> StepRecord:
    return StepRecord(
        step=Step(data["step"]),
        outcome=Outcome(data["outcome"]),
        at=datetime.fromisoformat(data["at"]),
        detail=data["detail"],
    )


def _priced_item(order_id: str, line: OrderLine) -> published.PricedItem:
    if line.sku is None or line.name is None or line.unit_price is None:
        raise ValueError(f"order {order_id} is confirmed with an unpriced line")
    return published.PricedItem(
        product_id=line.product_id,
        sku=line.sku,
        name=line.name,
        quantity=line.quantity,
        unit_price=line.unit_price,
    )
