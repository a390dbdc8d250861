"""An order's checkout log: the outcome of every step tried, oldest first, and what the saga
reads off it (which steps are done, which may have had their effect, what undoing is due)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orders.domain.saga_definition import CHECKOUT_SAGA, Outcome, SagaDefinition, Step


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One entry of an order's checkout log."""

    step: Step
    outcome: Outcome
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StepLog:
    """The log, a value: ``with_record`` answers a longer log."""

    records: tuple[StepRecord, ...] = ()
    saga: SagaDefinition = CHECKOUT_SAGA

    def with_record(self, record: StepRecord) -> StepLog:
        return StepLog((*self.records, record), self.saga)

    def has_done(self, step: Step) -> bool:
        return any(r.step is step and r.outcome is Outcome.DONE for r in self.records)

    def has_outcome(self, step: Step) -> bool:
        """Whether ``step`` ended one way or another (a failure is no end: it is tried again)."""
        return any(r.step is step and r.outcome is not Outcome.FAILED for r in self.records)

    def maybe_done(self, step: Step) -> bool:
        """Whether ``step``'s effect may have happened: done, or timed out in doubt."""
        return any(
            r.step is step and r.outcome in {Outcome.DONE, Outcome.TIMED_OUT} for r in self.records
        )

    def repeats_failure(self, step: Step) -> bool:
        """Whether a failure of ``step`` now would repeat the entry before it."""
        return bool(self.records) and (self.records[-1].step, self.records[-1].outcome) == (
            step,
            Outcome.FAILED,
        )

    @property
    def checkout_done(self) -> bool:
        return all(self.has_done(step) for step in self.saga.steps)

    def next_forward_step(self) -> Step | None:
        """The first checkout step not done yet."""
        return next((step for step in self.saga.steps if not self.has_done(step)), None)

    def compensations_due(self) -> list[Step]:
        """The undoing a step log calls for once its order is rejected or cancelled, in the
        order to run it. A step that timed out may have had its effect: it is undone like one
        that was done; a step whose successor is done (captured, committed) needs none."""
        due = []
        for step, undo in self.saga.compensations:
            superseded_by = self.saga.superseded_by(step)
            if (
                self.maybe_done(step)
                and not (superseded_by and self.has_done(superseded_by))
                and not self.has_done(undo)
            ):
                due.append(undo)
        return due
