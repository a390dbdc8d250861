"""Opt-in Prometheus beside `souk up` (``telemetry: {prometheus: true}``): when a
``prometheus`` binary is on PATH, it scrapes every instance with Souk's rules loaded."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from importlib import resources
from typing import TYPE_CHECKING

import yaml

from souk.meshing import CONTROL_PLANE, SIDECAR_SUFFIX, is_sidecar
from souk.plan import instance_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from pathlib import Path

    from souk.plan import InstancePlan
    from souk.topology import TelemetrySpec

SCRAPE_INTERVAL = "5s"


def prometheus_config(plans: Sequence[InstancePlan], rules: Path) -> dict[str, object]:
    """A Prometheus configuration with one scrape job per service, named after it.

    With the mesh on, each sidecar's job reads Envoy's ``/stats/prometheus`` on its ops
    port, and an application on a private Unix socket is scraped there too: its sidecar's
    ops port serves the application's ``/metrics`` (Istio's metrics merging). The control
    plane serves no metrics and is not scraped (a target that can never answer would keep
    the instance-down alert firing).
    """
    by_instance = {plan.instance: plan for plan in plans}
    jobs: dict[str, list[str]] = {}
    for plan in plans:
        if plan.service == CONTROL_PLANE:
            continue
        scraped = plan
        if plan.socket is not None:
            scraped = by_instance[instance_id(f"{plan.service}{SIDECAR_SUFFIX}", plan.index)]
        jobs.setdefault(plan.service, []).append(scraped.url.removeprefix("http://"))
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": service,
                **({"metrics_path": "/stats/prometheus"} if is_sidecar(service) else {}),
                "static_configs": [
                    {"targets": targets, "labels": {}}  # instance: the target's address
                ],
            }
            for service, targets in jobs.items()
        ],
    }


@contextlib.asynccontextmanager
async def prometheus_beside(
    telemetry: TelemetrySpec,
    plans: Sequence[InstancePlan],
    data_dir: Path,
    say: Callable[[str], None],
) -> AsyncIterator[None]:
    """Run Prometheus for as long as the block runs, if the topology asks and it is installed."""
    binary = shutil.which("prometheus") if telemetry.prometheus else None
    if telemetry.prometheus and binary is None:
        say("telemetry.prometheus is on but no `prometheus` is on PATH; not starting it")
    if binary is None:
        yield
        return
    home = data_dir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    rules = home / "rules.yml"
    rules.write_text(
        resources.files("souk").joinpath("prometheus_rules/rules.yml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    config = home / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(plans, rules)), encoding="utf-8")
    with (home / "prometheus.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{telemetry.prometheus_port}",
            stdout=log,
            stderr=log,
        )
    say(f"prometheus on http://localhost:{telemetry.prometheus_port} (pid {process.pid})")
    try:
        yield
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
