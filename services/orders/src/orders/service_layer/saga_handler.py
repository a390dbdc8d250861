"""The handler of the checkout saga's commands (the saga itself is defined, as data, in
``orders.domain.saga_definition``).

Each step is a ``RunStep`` command on topic ``checkout``, keyed by the order id, sent through
the outbox in the transaction that appends the order's StepBegun event (the repository
publishes it: ``orders.adapters.publishing``). Orders' own consumer takes it: it loads the
order once, runs the step (idempotent by ids derived from the order id), then, in one
transaction, records the outcome, notes the next step begun (which sends its command) and
records the command as handled. A crash anywhere means the command is delivered again and the step
run again, to the same effect; a command whose step is no longer the one out is stale and
only acknowledged. A step that goes unanswered past its deadline is timed out when its
command comes round again: the order is rejected and what the step may have done undone.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, NoReturn

from chassis import get_logger
from orders.domain.errors import CheckoutRefused, OrderMovedOn, StaleOrder
from orders.domain.model import CHECKOUT
from orders.service_layer.ports import NoUsableAnswer

if TYPE_CHECKING:
    from collections.abc import Callable

    from orders.domain.commands import RunStep
    from orders.domain.model import Order
    from orders.domain.saga_definition import Step
    from orders.service_layer.checkout import Checkout
    from orders.service_layer.ports import Receipt, UnitOfWorkFactory

MAX_CONFLICTS: Final = 10

_log = get_logger("orders.saga")


class StepUnfinished(Exception):  # noqa: N818 - says what happened to the step
    """The step got no usable answer this time: the bus delivers its command again."""


class CheckoutSaga:
    """Handles the saga's commands: one step, its outcome, the next command."""

    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        checkout: Checkout,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow_factory = uow_factory
        self._checkout = checkout
        self._clock = clock

    async def handle(self, command: RunStep, receipt: Receipt) -> None:
        """Run the command's step and move the saga on; raises StepUnfinished (and the bus
        delivers the command again) when the step got no usable answer."""
        order = await self._current(command, receipt)
        if order is None:
            return
        step = command.step
        try:
            done = await self._checkout.perform(step, order)
        except CheckoutRefused as refusal:
            if step not in CHECKOUT:
                # What was done must be undone whatever the answer: ask again later.
                await self._unfinished(order, step, refusal.reason)
            reason = refusal.reason
            await self._change(
                order.id, receipt, lambda o: o.refuse(step, reason, self._clock()), loaded=order
            )
            return
        except NoUsableAnswer as failure:
            await self._unfinished(order, step, str(failure))

        def record(order: Order) -> None:
            try:
                order.record_done(done, self._clock())
            except CheckoutRefused as refusal:  # priced in several currencies
                order.refuse(step, refusal.reason, self._clock())

        await self._change(order.id, receipt, record, loaded=order)

    async def _current(self, command: RunStep, receipt: Receipt) -> Order | None:
        """The order, if the command's step is still the one out and not overdue; otherwise
        the command is settled here (stale: acknowledged; overdue: timed out) and None."""
        now = self._clock()
        async with self._uow_factory() as uow:
            if await uow.handled_commands.seen(receipt):
                return None
            order = await uow.orders.get(command.order_id)
        if order is not None and order.step_in_progress is command.step and not order.overdue(now):
            if order.waited_past_deadline(now):
                # Head-of-line: the command waited behind others. It gets its attempt.
                return await self._change(
                    order.id, None, lambda o: o.start_late(command.step, now), loaded=order
                )
            return order
        if order is None or order.step_in_progress is not command.step:
            _log.info("stale checkout command", order_id=command.order_id, step=command.step)
            await self._change(command.order_id, receipt, lambda _: None, loaded=order)
            return None
        _log.warning("checkout step timed out", order_id=order.id, step=command.step)
        await self._change(
            order.id, receipt, lambda o: o.time_out(command.step, self._clock()), loaded=order
        )
        return None

    async def _unfinished(self, order: Order, step: Step, error: str) -> NoReturn:
        _log.warning("checkout step failed; its command comes again", order_id=order.id, step=step)
        await self._change(
            order.id, None, lambda o: o.fail(step, error, self._clock()), loaded=order
        )
        raise StepUnfinished(f"{step}: {error}")

    async def _change(
        self,
        order_id: str,
        receipt: Receipt | None,
        change: Callable[[Order], None],
        *,
        loaded: Order | None = None,
    ) -> Order | None:
        """Apply ``change`` to the order and move the saga on, with the command's record in
        the inbox, in one transaction; a change that no longer applies is dropped (the
        command's record still commits). The order as the handler ``loaded`` it is changed
        first; if another writer stored a newer version since, that one is loaded and
        changed instead. Answers the order as stored."""
        order = loaded
        for _ in range(MAX_CONFLICTS):
            async with self._uow_factory() as uow:
                if receipt is not None and await uow.handled_commands.seen(receipt):
                    return None
                if order is None:
                    order = await uow.orders.get(order_id)
                if order is not None:
                    with contextlib.suppress(OrderMovedOn):
                        change(order)
                    order.advance(self._clock())
                    try:
                        await uow.orders.save(order)
                    except StaleOrder:
                        # The customer cancelled meanwhile: decide again on their version.
                        order = None
                        continue
                if receipt is not None:
                    await uow.handled_commands.record(receipt)
                await uow.commit()
                return order
        raise StaleOrder(order_id)


async def restart_stalled(uow_factory: UnitOfWorkFactory, *, at: datetime) -> int:
    """Begin the next step of every unsettled order that has no command out; how many.

    The saga's own writes never leave one so (every change ends by beginning the next step):
    these are orders stored before the saga, imported by migration 0004 with their step in
    doubt, which beginning it again runs again, to the same effect. Of two replicas starting
    at once, one begins each order and the other finds it moved on.
    """
    async with uow_factory() as uow:
        order_ids = await uow.orders.unsettled()
    restarted = 0
    for order_id in order_ids:
        async with uow_factory() as uow:
            order = await uow.orders.get(order_id)
            if order is None or order.step_in_progress is not None:
                continue
            order.advance(at)
            try:
                await uow.orders.save(order)
            except StaleOrder:
                continue
            await uow.commit()
            restarted += 1
    if restarted:
        _log.info("restarted stalled checkouts", count=restarted)
    return restarted
