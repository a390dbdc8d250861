"""`souk chaos`'s verdicts: each invariant fails on the evidence of a loss, not only passes.

The scenarios themselves run against a booted system in tests/e2e/test_chaos.py; here the
checks are fed what the services would answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from souk.chaos import (
    INVARIANTS,
    Before,
    Burst,
    ChaosError,
    Check,
    Options,
    Outcome,
    RunningSystem,
    _history,
    _notifications,
    _payments,
    _terminal,
    checkout_latency,
    outcome_table,
    percentile,
    run,
)
from souk.state import SoukState, write_state


def order(
    order_id: str, status: str = "CONFIRMED", pending: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "id": order_id,
        "status": status,
        "reason": "authorize-payment got no answer in 60 s" if status == "REJECTED" else None,
        "compensations_pending": list(pending),
        "items": [{"product_id": "p1", "sku": "SKU-1", "quantity": 1}],
    }


def burst(*order_ids: str, unanswered: int = 0) -> Burst:
    placed = Burst("http://gateway", [], [], Options())
    placed.placed = {f"key-{n}": order_id for n, order_id in enumerate(order_ids)}
    placed.unanswered = [f"lost-{n}" for n in range(unanswered)]
    return placed


def before(authorizations: set[str] | None = None) -> Before:
    return Before(
        stock={}, orders=set(), authorizations=authorizations or set(), dead_letters=set()
    )


def payment(
    payment_id: str, provider: str = "payment-primary", status: str = "CAPTURED"
) -> dict[str, Any]:
    return {"id": payment_id, "provider": provider, "status": status}


def authorization(auth_id: str, reference: str, status: str = "captured") -> dict[str, Any]:
    return {"id": auth_id, "reference": reference, "status": status}


# -- terminal ---------------------------------------------------------------------------------


def test_orders_all_ended_pass() -> None:
    ours = {"o1": order("o1"), "o2": order("o2", "REJECTED")}
    check = _terminal(ours, burst("o1", "o2"))
    assert check.ok is True
    assert check.detail == (
        "2/2 (1 confirmed 1 rejected); 1x authorize-payment got no answer in 60 s"
    )


def test_an_order_still_compensating_is_not_terminal() -> None:
    ours = {"o1": order("o1"), "o2": order("o2", "REJECTED", pending=("release-stock",))}
    check = _terminal(ours, burst("o1", "o2"))
    assert check.ok is False
    assert "1 not terminal" in check.detail


def test_a_pending_order_fails() -> None:
    check = _terminal({"o1": order("o1", "PENDING")}, burst("o1"))
    assert check.ok is False


def test_an_order_no_answer_named_fails_as_a_duplicate_placement() -> None:
    # A retried POST made a second order instead of replaying the first.
    ours = {"o1": order("o1"), "o2": order("o2")}
    check = _terminal(ours, burst("o1"))
    assert check.ok is False
    assert "1 orders no key was answered with" in check.detail


def test_a_key_never_answered_fails() -> None:
    check = _terminal({"o1": order("o1")}, burst("o1", unanswered=1))
    assert check.ok is False
    assert "1 keys never answered" in check.detail


# -- payments ---------------------------------------------------------------------------------


def test_one_capture_per_confirmed_order_passes() -> None:
    ours = {"o1": order("o1"), "o2": order("o2", "REJECTED")}
    payments = {"o1": [payment("pay1")], "o2": [payment("pay2", status="VOIDED")]}
    books = {
        "payment-primary": [authorization("a1", "pay1"), authorization("a2", "pay2", "voided")],
        "payment-backup": [],
    }
    check = _payments(ours, payments, books, before(), set())
    assert check.ok is True, check.detail


def test_a_second_capture_across_providers_fails() -> None:
    ours = {"o1": order("o1")}
    payments = {"o1": [payment("pay1"), payment("pay1b", "payment-backup")]}
    books = {
        "payment-primary": [authorization("a1", "pay1")],
        "payment-backup": [authorization("b1", "pay1b")],
    }
    check = _payments(ours, payments, books, before(), set())
    assert check.ok is False
    assert "confirmed without exactly one capture" in check.detail


def test_a_rejected_order_that_was_captured_fails() -> None:
    ours = {"o1": order("o1", "REJECTED")}
    payments = {"o1": [payment("pay1")]}
    books = {"payment-primary": [authorization("a1", "pay1")], "payment-backup": []}
    check = _payments(ours, payments, books, before(), set())
    assert check.ok is False
    assert "unconfirmed captured" in check.detail


def test_an_authorization_left_held_fails_even_for_no_payment_of_billing() -> None:
    # A frozen provider authorized a request billing gave up on: money held on a card.
    ours = {"o1": order("o1", "REJECTED")}
    books = {
        "payment-primary": [authorization("a1", "claim-never-answered", "authorized")],
        "payment-backup": [],
    }
    check = _payments(ours, {"o1": []}, books, before(), set())
    assert check.ok is False
    assert "1 authorizations still held" in check.detail


def test_a_capture_for_no_payment_of_billing_fails() -> None:
    books = {"payment-primary": [authorization("a1", "unknown")], "payment-backup": []}
    check = _payments({}, {}, books, before(), set())
    assert check.ok is False
    assert "1 captures for no payment" in check.detail


def test_authorizations_from_before_the_burst_are_not_counted() -> None:
    books = {"payment-primary": [authorization("old", "x", "authorized")], "payment-backup": []}
    assert _payments({}, {}, books, before({"old"}), set()).ok is True


def test_a_restarted_provider_that_forgot_a_capture_counts_billings_word() -> None:
    ours = {"o1": order("o1")}
    payments = {"o1": [payment("pay1")]}
    books: dict[str, list[dict[str, Any]]] = {"payment-primary": [], "payment-backup": []}
    assert _payments(ours, payments, books, before(), set()).ok is False
    check = _payments(ours, payments, books, before(), {"payment-primary"})
    assert check.ok is True
    assert "provider restarted" in check.detail


# -- notifications and history ----------------------------------------------------------------


def test_the_same_news_twice_is_a_duplicate() -> None:
    ours = {"o1": order("o1")}
    told = [
        {"order_id": "o1", "subject": "OrderPlaced"},
        {"order_id": "o1", "subject": "OrderConfirmed"},
    ]
    assert _notifications(told, ours).ok is True
    check = _notifications([*told, {"order_id": "o1", "subject": "OrderConfirmed"}], ours)
    assert check.ok is False
    assert "OrderConfirmed x2" in check.detail


def test_history_must_have_each_order_with_its_status() -> None:
    ours = {"o1": order("o1"), "o2": order("o2", "REJECTED")}
    assert _history({"o1": {"status": "CONFIRMED"}, "o2": {"status": "REJECTED"}}, ours).ok
    check = _history({"o1": {"status": "PENDING"}}, ours)
    assert check.ok is False
    assert check.detail == "1 missing, 1 differ"


# -- the table --------------------------------------------------------------------------------


def test_the_table_shows_each_verdict_with_its_numbers() -> None:
    outcome = Outcome(
        "kill-gateway",
        "SIGKILL gateway-1 (pid 42); restarted",
        [Check("terminal", True, "12/12"), Check("payments", False, "1 authorizations still held")],
    )
    console = Console(width=200, record=True)
    console.print(outcome_table([outcome]))
    text = console.export_text()
    assert "PASS 12/12" in text
    assert "FAIL 1 authorizations still held" in text
    assert outcome.failed
    assert outcome.as_dict()["checks"]["payments"]["verdict"] == "FAIL"


# -- checkout latency -----------------------------------------------------------------------


def test_the_p99_is_the_nearest_rank_of_the_samples() -> None:
    samples = [float(n) for n in range(100, 0, -1)]  # 1..100, out of order

    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 0.5) == 50.0
    assert percentile([*samples, 1000.0], 0.99) == 100.0  # 101 samples: rank ceil(99.99) = 100
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.99)


def test_checkout_latency_runs_from_the_first_send_to_the_order_seen_terminal() -> None:
    sent_at = {"k1": 10.0, "k2": 10.5, "k3": 11.0, "k4": 12.0}
    placed = {"k1": "o1", "k2": "o2", "k3": "o3", "k4": "o4"}
    terminal_at = {"o1": 11.0, "o2": 13.5, "o3": 30.0}  # o4 never seen terminal

    latency = checkout_latency(sent_at, placed, terminal_at)

    assert latency is not None
    assert (latency.count, latency.unseen) == (3, 1)
    assert (latency.p50, latency.p99, latency.longest) == (3.0, 19.0, 19.0)
    assert str(latency) == "19.00 s (p50 3.00, max 19.00, n=3), 1 not seen terminal"


def test_a_key_never_answered_has_no_latency_and_no_order_seen_gives_none() -> None:
    # A key never answered made no order the client knows of: it is not a sample.
    latency = checkout_latency({"k1": 0.0, "k2": 0.0}, {"k1": "o1"}, {"o1": 2.0})
    assert latency is not None
    assert (latency.count, latency.p99, latency.unseen) == (1, 2.0, 0)
    assert checkout_latency({"k1": 0.0}, {"k1": "o1"}, {}) is None


def test_the_table_and_the_json_give_each_scenarios_p99_checkout_latency() -> None:
    measured = Outcome(
        "freeze-inventory",
        "SIGSTOP inventory-2 20 s",
        [Check(name, True, "ok") for name in INVARIANTS],
        latency=checkout_latency(
            {"k1": 0.0, "k2": 0.0}, {"k1": "o1", "k2": "o2"}, {"o1": 1.5, "o2": 4.25}
        ),
    )
    unmeasured = Outcome("kill-orders", "-", [Check(name, False, "x") for name in INVARIANTS])
    console = Console(width=300, record=True)
    console.print(outcome_table([measured, unmeasured]))
    text = console.export_text()

    assert "p99 checkout" in text
    assert "4.25 s (p50 1.50, max 4.25, n=2)" in text
    assert measured.as_dict()["checkout_latency_seconds"] == {
        "p50": 1.5,
        "p99": 4.25,
        "max": 4.25,
        "count": 2,
        "unseen": 0,
    }
    assert unmeasured.as_dict()["checkout_latency_seconds"] is None


# -- skipping -------------------------------------------------------------------------------


def _running_on(tmp_path: Path, broker: str | None) -> RunningSystem:
    """A state file naming this very process as `souk up`, its topology with ``broker``."""
    topology = tmp_path / "souk.yaml"
    shape: dict[str, Any] = {"services": {"gateway": {"port": 8080}}}
    if broker is not None:
        shape["broker"] = broker
    topology.write_text(yaml.safe_dump(shape), encoding="utf-8")
    state = SoukState(
        pid=os.getpid(), started_at="2026-01-01T00:00:00+00:00", topology=str(topology),
        data_dir=str(tmp_path), instances=[],
    )  # fmt: skip
    write_state(tmp_path, state)
    return RunningSystem(tmp_path)


async def test_restart_broker_is_skipped_on_the_embedded_broker_with_the_reason(
    tmp_path: Path,
) -> None:
    # No customer is signed up for a skipped scenario: nothing here listens to be asked.
    [outcome] = await run(_running_on(tmp_path, None), ["restart-broker"], Options(), print)
    assert outcome.skipped is not None
    assert "embedded broker" in outcome.skipped
    assert {check.verdict for check in outcome.checks} == {"SKIP"}
    assert not outcome.failed


async def test_restart_broker_on_a_server_needs_the_command_that_restarts_it(
    tmp_path: Path,
) -> None:
    system = _running_on(tmp_path, "rabbitmq")
    [outcome] = await run(system, ["restart-broker"], Options(), print)
    assert outcome.skipped == "a rabbitmq server is not run by souk: give --broker-restart-command"


async def test_an_unknown_scenario_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ChaosError, match="no scenario pull-the-plug"):
        await run(_running_on(tmp_path, None), ["pull-the-plug"], Options(), print)


async def test_a_scenario_that_cannot_run_fails_and_the_next_one_still_runs(
    tmp_path: Path,
) -> None:
    # A system whose state names no instance at all: no gateway to shop through.
    system = _running_on(tmp_path, None)
    names = ["kill-identity", "restart-broker"]
    outcomes = await run(system, names, Options(), print)
    assert [outcome.scenario for outcome in outcomes] == names
    failed, skipped = outcomes
    assert failed.failed
    assert all(c.detail.startswith("could not run: ") for c in failed.checks)
    assert "gateway" in failed.checks[0].detail
    assert skipped.skipped is not None


def test_signing_up_is_asked_again_when_identity_answers_too_late(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from souk import chaos  # noqa: PLC0415 - the module whose names are patched

    asked: list[str] = []

    def customer_token(gateway: str, email: str, password: str) -> str:
        asked.append(email)
        if len(asked) < 3:  # the edge's 504 twice, as on a loaded machine
            raise chaos.TokenError("registering: 504 Gateway Timeout")
        return "header.eyJzdWIiOiAiY3VzdG9tZXItMSJ9.signature"

    monkeypatch.setattr(chaos, "customer_token", customer_token)
    monkeypatch.setattr(chaos.time, "sleep", lambda _: None)

    [customer] = chaos.sign_up("http://127.0.0.1:1", 1)

    assert customer.subject == "customer-1"
    assert len(asked) == 3
    assert len(set(asked)) == 1  # the same email each time: asking again signs it in
