"""The checkout saga, defined once: its steps in order, the state an order is in while each
step is out, what undoes each step, which later step makes an undo moot, and how long each
step may go unanswered.

Everything else reads this definition: the Order derives its next step and the compensations
due from it, the saga handler (``orders.service_layer.saga_handler``) times steps out by it, and
``docs/saga.md`` holds the diagram :func:`mermaid` draws from it (a test compares the two),
so the picture cannot drift from what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final


class Step(StrEnum):
    """A checkout step, or the compensation that undoes one."""

    PRICE = "price"
    RESERVE_STOCK = "reserve-stock"
    AUTHORIZE_PAYMENT = "authorize-payment"
    CAPTURE_PAYMENT = "capture-payment"
    COMMIT_STOCK = "commit-stock"
    RELEASE_STOCK = "release-stock"
    RETURN_STOCK = "return-stock"
    VOID_PAYMENT = "void-payment"
    REFUND_PAYMENT = "refund-payment"


class Outcome(StrEnum):
    """How a step ended, as the order's log records it."""

    DONE = "done"
    REFUSED = "refused"
    FAILED = "failed"
    TIMED_OUT = "timed-out"
    """No answer came before the step's deadline: its effect is in doubt, hence undone."""


@dataclass(frozen=True, slots=True)
class Stage:
    """One forward step of the saga.

    ``undo`` is the compensation that takes the step's effect back (None: nothing to take
    back); once ``supersedes``'s successor is done, the earlier step's undo is moot (captured
    money is refunded, not voided; committed stock has left the shelf and is not released).
    """

    step: Step
    state: str
    """What the order is doing while the step is out, as the diagram names it."""
    timeout: timedelta
    """How long the step may go unanswered before the saga gives up on it and compensates."""
    undo: Step | None = None
    supersedes: Step | None = None


@dataclass(frozen=True, slots=True)
class SagaDefinition:
    """The forward stages in order; compensations run in the reverse order of their steps."""

    stages: tuple[Stage, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(stage.step for stage in self.stages)

    def stage(self, step: Step) -> Stage:
        for stage in self.stages:
            if stage.step is step:
                return stage
        raise KeyError(f"{step} is not a forward step of the saga")

    @property
    def compensations(self) -> tuple[tuple[Step, Step], ...]:
        """(forward step, its undo) pairs, latest effect first: the order undoing runs in."""
        return tuple(
            (stage.step, stage.undo) for stage in reversed(self.stages) if stage.undo is not None
        )

    def superseded_by(self, step: Step) -> Step | None:
        """The later step whose success makes ``step``'s undo moot, if any."""
        return next((s.step for s in self.stages if s.supersedes is step), None)

    def timeout(self, step: Step) -> timedelta | None:
        """How long ``step`` may take; None for a compensation, which runs until it is done."""
        return next((stage.timeout for stage in self.stages if stage.step is step), None)


CHECKOUT_SAGA: Final = SagaDefinition(
    stages=(
        Stage(Step.PRICE, "Pricing", timedelta(seconds=30)),
        Stage(
            Step.RESERVE_STOCK,
            "ReservingStock",
            timedelta(seconds=30),
            undo=Step.RELEASE_STOCK,
        ),
        # Billing may fail over to a second provider after the first times out.
        Stage(
            Step.AUTHORIZE_PAYMENT,
            "AuthorizingPayment",
            timedelta(seconds=60),
            undo=Step.VOID_PAYMENT,
        ),
        Stage(
            Step.CAPTURE_PAYMENT,
            "CapturingPayment",
            timedelta(seconds=60),
            undo=Step.REFUND_PAYMENT,
            supersedes=Step.AUTHORIZE_PAYMENT,
        ),
        # Cancelling a confirmed order brings its committed stock back on the shelf.
        Stage(
            Step.COMMIT_STOCK,
            "CommittingStock",
            timedelta(seconds=30),
            undo=Step.RETURN_STOCK,
            supersedes=Step.RESERVE_STOCK,
        ),
    )
)

_COMPENSATION_STATES: Final = {
    Step.RETURN_STOCK: "ReturningStock",
    Step.RELEASE_STOCK: "ReleasingStock",
    Step.VOID_PAYMENT: "VoidingPayment",
    Step.REFUND_PAYMENT: "RefundingPayment",
}


def mermaid(saga: SagaDefinition = CHECKOUT_SAGA) -> str:
    """The saga as a Mermaid state diagram (the one docs/saga.md shows)."""
    lines = ["stateDiagram-v2", "    [*] --> " + saga.stages[0].state + ": OrderPlaced"]
    for stage, following in zip(saga.stages, saga.stages[1:], strict=False):
        lines.append(f"    {stage.state} --> {following.state}: {stage.step} done")
    last = saga.stages[-1]
    lines.append(f"    {last.state} --> CONFIRMED: {last.step} done")
    for stage in saga.stages:
        seconds = int(stage.timeout.total_seconds())
        lines.append(
            f"    {stage.state} --> REJECTED: {stage.step} refused, or no answer in {seconds} s"
        )
    cancellable = [stage.state for stage in saga.stages] + ["CONFIRMED"]
    lines.extend(f"    {state} --> CANCELLED: the customer cancels" for state in cancellable)
    lines.append("    REJECTED --> Compensating: undo what was done")
    lines.append("    CANCELLED --> Compensating: undo what was done")
    lines.append("    CONFIRMED --> [*]")
    lines.append("    state Compensating {")
    compensations = saga.compensations
    for index, (step, undo) in enumerate(compensations):
        state = _COMPENSATION_STATES[undo]
        moot = saga.superseded_by(step)
        condition = f"{step} done or in doubt" + (f", {moot} not done" if moot else "")
        source = "[*]" if index == 0 else _COMPENSATION_STATES[compensations[index - 1][1]]
        lines.append(f"        {source} --> {state}: {condition}")
    if compensations:
        lines.append(f"        {_COMPENSATION_STATES[compensations[-1][1]]} --> [*]")
    lines.append("    }")
    lines.append("    note right of Compensating: each undo runs only if due, until it is done")
    lines.append("    Compensating --> [*]")
    return "\n".join(lines) + "\n"
