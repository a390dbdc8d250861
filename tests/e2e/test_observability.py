"""Logs, traces and metrics a user relies on when something goes wrong."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx

from souk.testing import require_promtool


def _log_lines(souk, instance: str, needle: str) -> list[dict]:
    path = souk.data_dir / "logs" / f"{instance}.log"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.split("\n")[:-1]  # the last piece may be a line still being written
    return [json.loads(line) for line in lines if line.startswith("{") and needle in line]


def test_one_request_can_be_followed_across_the_gateway_and_catalog_logs(souk, gateway):
    trace_id = uuid.uuid4().hex
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    response = gateway.get(
        "/api/catalog/products",
        params={"q": "tea"},
        headers={"traceparent": f"00-{trace_id}-{'ab' * 8}-01", "x-request-id": request_id},
    )
    assert response.status_code == 200
    upstream = response.headers["x-souk-upstream"]

    at_gateway = souk.wait_until(lambda: _log_lines(souk, "gateway-1", request_id), timeout=5)
    at_catalog = souk.wait_until(lambda: _log_lines(souk, upstream, request_id), timeout=5)

    assert {line["trace_id"] for line in at_gateway + at_catalog} == {trace_id}
    access = next(line for line in at_catalog if line["event"] == "request")
    assert access["service"] == "catalog"
    assert access["instance"] == upstream
    assert access["route"] == "/products"
    assert access["status"] == 200
    assert access["level"] == "info"


def test_every_process_serves_red_metrics_by_route(souk, gateway):
    for _ in range(4):
        gateway.get("/api/catalog/categories")
    for record in souk.state().instances:
        metrics = httpx.get(f"{record.url}/metrics", timeout=5).text
        assert "http_request_duration_seconds_bucket" in metrics, record.instance
        if record.service == "catalog":
            assert 'http_requests_total{method="GET",route="/categories",status="200"}' in metrics


def test_souk_status_reports_every_instance_ready_and_healthy(souk):
    result = souk.souk("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    rows = {row["instance"]: row for row in status["instances"]}
    assert set(rows) == {record.instance for record in souk.state().instances}
    assert {"gateway-1", "catalog-1", "catalog-2", "inventory-2", "orders-1"} <= set(rows)
    assert all(row["health"] == "ok" for row in rows.values())


def test_souk_logs_merges_the_instances_of_a_service(souk, gateway):
    gateway.get("/api/catalog/products")
    gateway.get("/api/catalog/products")
    result = souk.souk("logs", "catalog", "-n", "200")
    assert result.returncode == 0, result.stderr
    prefixes = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"catalog-1", "catalog-2"} <= prefixes
    assert "gateway-1" not in prefixes


def test_every_process_metrics_pass_promtool_with_no_finding(souk, gateway):
    promtool = require_promtool()
    gateway.get("/api/catalog/categories")
    for record in souk.state().instances:
        metrics = httpx.get(f"{record.url}/metrics", timeout=5).text
        result = subprocess.run(
            [promtool, "check", "metrics"],
            input=metrics,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (record.instance, result.stdout + result.stderr)
        assert result.stdout + result.stderr == "", (record.instance, result.stdout)


def test_the_gateway_measures_each_upstream_route_not_one_catch_all(souk, gateway):
    gateway.get("/api/catalog/categories")
    [record] = [r for r in souk.state().instances if r.instance == "gateway-1"]
    metrics = httpx.get(f"{record.url}/metrics", timeout=5).text
    assert 'route="/api/catalog/{path}"' in metrics
    assert 'route="/{path:path}"' not in metrics
    assert 'gateway_upstream_requests_total{method="GET",route="/api/catalog/{path}"' in metrics
