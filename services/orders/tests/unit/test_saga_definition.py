"""The saga's one definition: what the order derives from it, and the diagram drawn from it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from orders.domain.saga_definition import CHECKOUT_SAGA, Step, mermaid

SAGA_DOC = Path(__file__).parents[4] / "docs" / "saga.md"


def test_the_diagram_in_the_docs_is_the_one_the_definition_draws() -> None:
    committed = re.search(r"```mermaid\n(.*?)```", SAGA_DOC.read_text(encoding="utf-8"), re.S)

    assert committed is not None, "docs/saga.md has no mermaid block"
    assert committed.group(1) == mermaid(), (
        "docs/saga.md is out of date: paste the output of "
        "python -c 'from orders.domain.saga_definition import mermaid; print(mermaid())'"
    )


def test_the_diagram_shows_every_step_its_timeout_and_every_compensation() -> None:
    diagram = mermaid()

    for stage in CHECKOUT_SAGA.stages:
        seconds = int(stage.timeout.total_seconds())
        assert f"{stage.step} refused, or no answer in {seconds} s" in diagram
    for state in ("ReturningStock", "RefundingPayment", "VoidingPayment", "ReleasingStock"):
        assert state in diagram


def test_compensations_undo_the_latest_effect_first() -> None:
    assert CHECKOUT_SAGA.compensations == (
        (Step.COMMIT_STOCK, Step.RETURN_STOCK),
        (Step.CAPTURE_PAYMENT, Step.REFUND_PAYMENT),
        (Step.AUTHORIZE_PAYMENT, Step.VOID_PAYMENT),
        (Step.RESERVE_STOCK, Step.RELEASE_STOCK),
    )


def test_a_forward_step_has_a_deadline_and_a_compensation_none() -> None:
    assert CHECKOUT_SAGA.timeout(Step.CAPTURE_PAYMENT) == timedelta(seconds=60)
    assert CHECKOUT_SAGA.timeout(Step.RELEASE_STOCK) is None
    assert CHECKOUT_SAGA.superseded_by(Step.RESERVE_STOCK) is Step.COMMIT_STOCK
    assert CHECKOUT_SAGA.superseded_by(Step.CAPTURE_PAYMENT) is None
