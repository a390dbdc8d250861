"""Where `souk up` sends the processes' spans, when the console stops, and opt-in Prometheus."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from souk.meshing import with_mesh
from souk.plan import build_plan, free_port, stop_order
from souk.prometheus import prometheus_beside, prometheus_config
from souk.topology import parse_topology

WITH_CONSOLE = """
services:
  catalog: {{replicas: 2}}
  gateway: {{upstreams: [catalog]}}
  console: {{port: {port}, database: false}}
"""


def test_every_process_sends_its_spans_to_the_console_by_default(tmp_path: Path) -> None:
    port = free_port()
    plans = build_plan(parse_topology(WITH_CONSOLE.format(port=port), "souk.yaml"), tmp_path)
    endpoints = {
        plan.instance: plan.env.get(f"{plan.service.upper()}_OTLP_ENDPOINT") for plan in plans
    }
    assert set(endpoints.values()) == {f"http://127.0.0.1:{port}"}
    assert set(endpoints) == {"catalog-1", "catalog-2", "gateway-1", "console-1"}


def test_one_setting_sends_the_spans_elsewhere_or_nowhere(tmp_path: Path) -> None:
    text = WITH_CONSOLE.format(port=free_port())
    elsewhere = parse_topology(
        text + "telemetry: {otlp_endpoint: 'http://127.0.0.1:4318'}\n", "souk.yaml"
    )
    assert {
        p.env["CATALOG_OTLP_ENDPOINT"]
        for p in build_plan(elsewhere, tmp_path)
        if p.service == "catalog"
    } == {"http://127.0.0.1:4318"}
    nowhere = parse_topology(text + "telemetry: {export_spans: false}\n", "souk.yaml")
    assert not any("OTLP_ENDPOINT" in key for p in build_plan(nowhere, tmp_path) for key in p.env)


def test_without_a_console_no_process_exports_unless_told_where(tmp_path: Path) -> None:
    topology = parse_topology("services:\n  catalog: {}\n", "souk.yaml")
    assert not any("OTLP_ENDPOINT" in key for p in build_plan(topology, tmp_path) for key in p.env)


def test_the_console_stops_with_the_last_tier_so_it_receives_the_spans_of_the_others() -> None:
    topology = parse_topology(WITH_CONSOLE.format(port=free_port()), "souk.yaml")
    assert stop_order(topology) == [["gateway"], ["catalog", "console"]]


def test_prometheus_scrapes_every_instance_under_its_service_with_the_rules(
    tmp_path: Path,
) -> None:
    plans = build_plan(parse_topology(WITH_CONSOLE.format(port=free_port()), "souk.yaml"), tmp_path)
    config = prometheus_config(plans, tmp_path / "rules.yml")
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }  # type: ignore[index, union-attr]
    assert len(jobs["catalog"]) == 2
    assert config["rule_files"] == [str(tmp_path / "rules.yml")]
    assert yaml.safe_load(yaml.safe_dump(config)) == config


def test_with_the_mesh_on_prometheus_reads_each_sidecars_envoy_stats(tmp_path: Path) -> None:
    topology = parse_topology(
        WITH_CONSOLE.format(port=free_port()) + "mesh: {enabled: true}\n", "souk.yaml"
    )
    plans = with_mesh(topology, build_plan(topology, tmp_path), tmp_path)
    config = prometheus_config(plans, tmp_path / "rules.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}  # type: ignore[union-attr]
    assert jobs["catalog-sidecar"]["metrics_path"] == "/stats/prometheus"
    assert len(jobs["catalog-sidecar"]["static_configs"][0]["targets"]) == 2
    assert "metrics_path" not in jobs["catalog"]  # the default, /metrics
    # An application on a private Unix socket is scraped on its sidecar's ops port, which
    # serves the application's /metrics: the same targets as its sidecar's job.
    assert (
        jobs["catalog"]["static_configs"][0]["targets"]
        == (jobs["catalog-sidecar"]["static_configs"][0]["targets"])
    )
    assert "mesh" not in jobs  # the control plane has no metrics to scrape


async def test_souk_up_can_run_prometheus_with_its_targets_and_rules(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("no prometheus on PATH (Debian: apt-get install prometheus)")
    port = free_port()
    topology = parse_topology(
        WITH_CONSOLE.format(port=free_port())
        + f"telemetry: {{prometheus: true, prometheus_port: {port}}}\n",
        "souk.yaml",
    )
    said: list[str] = []
    async with (
        prometheus_beside(
            topology.telemetry, build_plan(topology, tmp_path), tmp_path, said.append
        ),
        httpx.AsyncClient() as client,
    ):
        for _ in range(100):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/-/ready")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        rules = (await client.get(f"http://127.0.0.1:{port}/api/v1/rules")).json()
        jobs: set[str] = set()
        for _ in range(50):  # targets show once discovery has run
            targets = (await client.get(f"http://127.0.0.1:{port}/api/v1/targets")).json()
            jobs = {t["labels"]["job"] for t in targets["data"]["activeTargets"]}
            if jobs:
                break
            await asyncio.sleep(0.2)
    groups = {group["name"] for group in rules["data"]["groups"]}
    assert {"souk-golden-signals", "souk-saga-and-bus"} <= groups
    assert jobs == {"catalog", "gateway", "console"}
    assert any("prometheus on" in line for line in said)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):  # stopped with the block
            await client.get(f"http://127.0.0.1:{port}/-/ready", timeout=2)
