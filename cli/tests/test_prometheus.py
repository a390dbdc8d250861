"""The Prometheus rules Souk ships: valid, and firing when (and only when) they should."""

from __future__ import annotations

import subprocess
from importlib import resources
from pathlib import Path

from souk.testing import require_promtool

RULES_TEST = Path(__file__).parent / "prometheus" / "rules_test.yml"


def test_the_rules_are_valid() -> None:
    promtool = require_promtool()
    rules = resources.files("souk").joinpath("prometheus_rules/rules.yml")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_fire_on_errors_latency_dead_letters_stuck_orders_and_down_instances() -> None:
    promtool = require_promtool()
    result = subprocess.run(
        [promtool, "test", "rules", RULES_TEST.name],
        cwd=RULES_TEST.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
