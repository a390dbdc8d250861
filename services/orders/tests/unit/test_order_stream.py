"""Whatever a saga does to an order, the order folded again from its stored events, or from
a snapshot of it, is the order it was: no state lives outside the events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chassis.eventstore import RecordedEvent
from contracts import Money
from orders.adapters.event_codec import OrderEvents, OrderSnapshots
from orders.domain.commands import RequestedItem
from orders.domain.errors import CheckoutRefused, OrderMovedOn, OrderNotCancellable
from orders.domain.model import Order, ProductSnapshot, StepDone
from orders.domain.saga_definition import CHECKOUT_SAGA, Step
from services.orders.tests.conftest import GOOD_CARD

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MINT = ProductSnapshot("p-mint", "TEA-NANA-MINT-100G", "Dried nana mint", Money(490, "EUR"))
LAMP = ProductSnapshot("p-lamp", "LMP-STAR-S", "Star lantern, small", Money(3900, "EUR"))
CODEC = OrderEvents()
SNAPSHOTS = OrderSnapshots()

# What can happen to an order, as (what, step) pairs drawn by hypothesis.
MOVES = st.lists(
    st.tuples(
        st.sampled_from(["advance", "done", "refuse", "fail", "time-out", "cancel"]),
        st.sampled_from(list(Step)),
    ),
    max_size=30,
)


def state(order: Order) -> dict[str, Any]:
    return {
        "customer_id": order.customer_id,
        "lines": order.lines,
        "status": order.status,
        "reason": order.reason,
        "last_error": order.last_error,
        "payment_id": order.payment_id,
        "step_in_progress": order.step_in_progress,
        "step_deadline": order.step_deadline,
        "steps": order.steps,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "version": order.version,
        "settled": order.settled,
        "next_step": order.next_step(),
        "compensations_due": order.compensations_due(),
    }


def stored(order: Order) -> list[RecordedEvent]:
    """The order's events as the store would hand them back: encoded, through JSON."""
    recorded = []
    for version, event in enumerate(order.pending_events, 1):
        new = CODEC.encode(event)
        recorded.append(
            RecordedEvent(
                stream_id=f"order-{order.id}",
                version=version,
                event_type=new.event_type,
                schema_version=new.schema_version,
                data=json.loads(json.dumps(new.data)),
                event_id=new.event_id,
                recorded_at=AT,
            )
        )
    return recorded


def play(moves: list[tuple[str, Step]]) -> Order:
    """An order placed, then moved as ``moves`` say; moves the order refuses are skipped."""
    order = Order.place(
        customer_id="c-1",
        items=[RequestedItem("p-mint", 2), RequestedItem("p-lamp", 1)],
        card_token=GOOD_CARD,
        at=AT,
    )
    order.advance(AT)
    for n, (move, step) in enumerate(moves, 1):
        at = AT + timedelta(seconds=n * 40)
        try:
            match move:
                case "advance":
                    order.advance(at)
                case "done":
                    products = {"p-mint": MINT, "p-lamp": LAMP}
                    order.record_done(StepDone(step, products=products, payment_id="pay-1"), at)
                case "refuse":
                    order.refuse(step, f"{step} refused", at)
                case "fail":
                    order.fail(step, f"{step} failed", at)
                case "time-out":
                    order.time_out(step, at + (CHECKOUT_SAGA.timeout(step) or timedelta()))
                case "cancel":
                    order.cancel(at)
        except (OrderMovedOn, OrderNotCancellable, CheckoutRefused):
            continue
    return order


@settings(max_examples=200, deadline=None)
@given(MOVES)
def test_an_order_folded_from_its_stored_events_is_the_order_that_recorded_them(
    moves: list[tuple[str, Step]],
) -> None:
    live = play(moves)

    folded = Order(live.id)
    for event in stored(live):
        folded.apply(CODEC.decode(event))

    assert state(folded) == state(live)


@settings(max_examples=200, deadline=None)
@given(MOVES)
def test_an_order_restored_from_a_snapshot_is_the_order_it_was_taken_of(
    moves: list[tuple[str, Step]],
) -> None:
    live = play(moves)

    snapshot = json.loads(json.dumps(SNAPSHOTS.state_of(live)))
    restored = SNAPSHOTS.restore(live.id, live.version, snapshot)

    assert state(restored) == state(live)
