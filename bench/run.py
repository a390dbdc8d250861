"""Souk benchmarks: prints one table. Run with `.venv/bin/python bench/run.py`.

- boot: seconds from `souk up` until every instance of the default topology is ready
  (median of --boots runs);
- gateway: throughput and latency of GET /products/{id} straight to one catalog replica and
  through the gateway (two replicas behind it), same client, same run, with the ratio.

Absolute numbers drift on shared machines; compare the ratios and medians of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import aiohttp
import httpx
import yaml

from souk.testing import SoukSystem, free_port

DIRECT = "direct to catalog-1"
THROUGH_GATEWAY = "through the gateway (2 replicas)"


def topology() -> dict:
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data.pop("data_dir", None)
    data["services"]["gateway"]["port"] = free_port()
    # One client at 127.0.0.1: lift the edge's default rate limits (docs/security.md), or
    # this measures the rate limiter.
    unlimited = {"rate": 1_000_000, "burst": 1_000_000}
    data["services"]["gateway"].setdefault("env", {})["GATEWAY_RATE_LIMITS"] = {
        "per_ip": unlimited,
        "per_client": unlimited,
        "per_ip_expensive": unlimited,
    }
    return data


def measure_boot(runs: int) -> list[float]:
    seconds = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="souk-bench-") as directory:
            started = time.perf_counter()
            system = SoukSystem(topology(), Path(directory), ready_timeout=60).start()
            seconds.append(time.perf_counter() - started)
            system.stop()
        print(f"  boot run {run + 1}/{runs}: {seconds[-1]:.2f}s", file=sys.stderr)
    return seconds


async def load(url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    remaining = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in remaining:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    boots = measure_boot(args.boots)
    rows = [("boot: souk up → all ready", f"{statistics.median(boots):.2f} s median", "", "")]

    with (
        tempfile.TemporaryDirectory(prefix="souk-bench-") as directory,
        SoukSystem(topology(), Path(directory), ready_timeout=60) as system,
    ):
        catalog = system.url("catalog")
        product_id = httpx.get(f"{catalog}/products?page_size=1").json()["items"][0]["id"]
        gateway_url = f"{system.gateway_url}/api/catalog/products/{product_id}"
        targets = {DIRECT: f"{catalog}/products/{product_id}", THROUGH_GATEWAY: gateway_url}
        results = {}
        for name, url in targets.items():
            asyncio.run(load(url, 200, args.concurrency))  # warm the pools
            results[name] = asyncio.run(load(url, args.requests, args.concurrency))
            print(f"  {name}: done", file=sys.stderr)
    for name, (rate, latencies) in results.items():
        rows.append(
            (
                f"GET product, {name}",
                f"{rate:,.0f} req/s",
                f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms",
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms",
            )
        )
    direct, gateway = results[DIRECT][0], results[THROUGH_GATEWAY][0]
    rows.append(("gateway / direct throughput", f"{gateway / direct:.2f}x", "", ""))

    print(f"\nSouk benchmarks ({args.requests} requests, concurrency {args.concurrency})")
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
