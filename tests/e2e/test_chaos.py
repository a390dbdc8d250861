"""`souk chaos` against one booted system on the embedded broker: each scenario's fault
during a short burst of checkouts, then every invariant asked of the services.

Every scenario of `souk chaos --list` but ``freeze-orders`` runs here, on one system, with
bursts of 12 checkouts and 3 s freezes (about 5 minutes on a loaded 2-core machine, most of
it kill-orders-twice and kill-gateway waiting for restarts). ``freeze-orders`` runs only with
SOUK_CHAOS_ALL=1: frozen 3 s it stays within the saga's step deadlines (30-60 s, not
settable), so it adds a minute and little that kill-orders-twice does not prove; past the
deadlines (65 s, the command's default) it is for `souk chaos` by hand. Scaled down from the
command's defaults (40 checkouts; freezes of 20 s):

- billing settles a claim a frozen provider never answered after 8 s here (120 s by
  default, past the saga's 60 s authorize deadline), so "no authorization left held" is
  proven within the test's bound;
- ``restart-broker`` is skipped: the embedded broker has no process to restart (the
  command says so in its table); test_chaos_nats.py runs it on a NATS server of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from souk.chaos import INVARIANTS, SCENARIOS
from souk.testing import SoukSystem

from .conftest import default_topology

BURST = ["--burst", "12", "--concurrency", "4", "--customers", "3"]
FAULT = ["--fault-seconds", "3", "--settle", "90"]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoukSystem]:
    topology = default_topology()
    billing = topology["services"]["billing"].setdefault("env", {})
    billing["BILLING_SETTLE_AFTER"] = "8"
    billing["BILLING_RECONCILE_INTERVAL"] = "1"
    system = SoukSystem(topology, tmp_path_factory.mktemp("souk-chaos"), ready_timeout=60)
    system.start()
    try:
        yield system
    finally:
        # Still no process may be left, but 15 instances just through kills and freezes stop
        # tier by tier (up to grace each): on a loaded machine that outlasts stop()'s
        # default 20 s wait (seen: 20 s, then every instance killed). Shutdown speed is
        # test_system's business, not this module's.
        system.stop(timeout=90)


# Left out unless SOUK_CHAOS_ALL=1 (see the module's docstring).
LONG = {"freeze-orders"}
EVERY = os.environ.get("SOUK_CHAOS_ALL") == "1"


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                name in LONG and not EVERY, reason="within the deadlines: SOUK_CHAOS_ALL=1"
            ),
        )
        for name in SCENARIOS
    ],
)
def test_scenario_keeps_every_invariant(system: SoukSystem, scenario: str) -> None:
    ran = system.souk("chaos", scenario, *BURST, *FAULT, "--json", timeout=300)
    evidence = f"exit {ran.returncode}\n{ran.stdout}\n{ran.stderr[-3000:]}"
    assert ran.returncode == 0, evidence
    [outcome] = json.loads(ran.stdout)
    assert outcome["scenario"] == scenario
    verdicts = {name: check["verdict"] for name, check in outcome["checks"].items()}
    assert set(verdicts) == set(INVARIANTS), evidence
    if scenario == "restart-broker":
        assert set(verdicts.values()) == {"SKIP"}, evidence
        assert "embedded broker" in outcome["skipped"], evidence
        return
    assert verdicts == dict.fromkeys(INVARIANTS, "PASS"), evidence
    # The fault was injected into the instance the scenario names, found by its pid.
    assert "pid" in outcome["fault"], evidence


def test_an_unknown_scenario_is_refused_before_anything_is_done(system: SoukSystem) -> None:
    before = {record.instance: record.pid for record in system.state().instances}
    ran = system.souk("chaos", "unplug-the-datacentre", "--burst", "1")
    assert ran.returncode == 1
    assert "no scenario unplug-the-datacentre" in ran.stderr
    assert "freeze-primary-provider" in ran.stderr  # the known ones are named
    assert {record.instance: record.pid for record in system.state().instances} == before
