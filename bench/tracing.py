"""What tracing costs: the catalog hot path and checkouts with tracing on and off, one run.

Two systems of the default topology run side by side: one as `souk up` runs it (every span
recorded and exported to the console), one with tracing off (no span recorded, none
exported; trace context still travels). Rounds alternate between them so that the drift of
a shared machine falls on both alike; the medians of the rounds are compared.

Throughput on a shared machine moves with whatever else runs, so the CPU time that
catalog-1 and the console spend per catalog request (``/proc/<pid>/stat``, Linux) is
reported too: that is what tracing costs the process, whatever the machine's load. Note the
load (``uptime``) beside the figures.

Run: ``.venv/bin/python bench/tracing.py`` (``--quick`` for a short run). Prints
``| name | value |`` rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml

from souk.testing import SoukSystem, customer_token, free_port

PASSWORD = "bench-tracing-sesame"  # noqa: S105 - a throwaway customer of a throwaway system
SETTLED = {"CONFIRMED", "REJECTED", "CANCELLED"}
_TRANSIENT = frozenset({502, 503, 504})
_ATTEMPTS = 5


def topology(*, tracing: bool) -> dict[str, Any]:
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    data.pop("data_dir", None)
    gateway = free_port()
    data["services"]["gateway"]["port"] = gateway
    data["services"]["console"]["port"] = free_port()
    for name, service in data["services"].items():
        env = service.setdefault("env", {})
        for key, value in env.items():
            if value == "http://localhost:8080":
                env[key] = f"http://127.0.0.1:{gateway}"
        if not tracing:
            env[name.upper().replace("-", "_") + "_TRACE_SAMPLE_RATIO"] = "0"
    if not tracing:
        data["telemetry"] = {"export_spans": False}
    # One client at 127.0.0.1 placing many orders: lift the edge's default rate limits
    # (docs/security.md), as bench/checkout.py does, or an idle machine measures the limiter.
    unlimited = {"rate": 1_000_000, "burst": 1_000_000}
    data["services"]["gateway"].setdefault("env", {})["GATEWAY_RATE_LIMITS"] = {
        "per_ip": unlimited,
        "per_client": unlimited,
        "per_ip_expensive": unlimited,
    }
    return data


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of a process so far (0 where /proc cannot tell)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids(system: SoukSystem) -> dict[str, int | None]:
    """The pids of catalog-1 and the console."""
    wanted = {"catalog-1": "catalog", "console-1": "console"}
    return {
        wanted[record.instance]: record.pid
        for record in system.state().instances
        if record.instance in wanted
    }


def progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


async def catalog_round(url: str, requests: int, concurrency: int) -> float:
    """Requests per second of GET ``url``."""
    remaining = iter(range(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in remaining:
                async with session.get(url) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{url} answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def checkout_round(
    gateway: str, token: str, product_id: str, orders: int, concurrency: int
) -> float:
    """Checkouts per second: from the first POST until the last order has settled."""
    headers = {"Authorization": f"Bearer {token}"}
    remaining = iter(range(orders))
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one() -> None:
            body = {
                "items": [{"product_id": product_id, "quantity": 1}],
                "payment": {"card_token": "tok_ok"},
            }
            key = {"Idempotency-Key": str(uuid.uuid4())}
            for attempt in range(1, _ATTEMPTS + 1):
                async with session.post(f"{gateway}/api/orders", json=body, headers=key) as placed:
                    # On a loaded machine the edge may time out waiting for orders: a client
                    # tries again with the same key (the order is placed once), as here.
                    if placed.status in _TRANSIENT and attempt < _ATTEMPTS:
                        await asyncio.sleep(0.5)
                        continue
                    # 201 placed; 200 a retry answered with the order its first try placed.
                    if placed.status not in (200, 201):
                        raise RuntimeError(f"order refused: {placed.status} {await placed.text()}")
                    order_id = (await placed.json())["id"]
                    break
            while True:
                async with session.get(f"{gateway}/api/orders/{order_id}") as answer:
                    if (await answer.json())["status"] in SETTLED:
                        return
                await asyncio.sleep(0.05)

        async def client() -> None:
            for _ in remaining:
                await one()

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return orders / (time.perf_counter() - started)


def stocked_product(system: SoukSystem) -> str:
    """A product of the seeded catalog with plenty of stock (the lantern stocks the most)."""
    catalog = system.url("catalog")
    items = httpx.get(f"{catalog}/products", params={"page_size": 100}, timeout=10).json()["items"]
    return str(items[0]["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="catalog GETs per round")
    parser.add_argument("--orders", type=int, default=30, help="checkouts per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="3 rounds, fewer requests")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests, args.orders = 3, 600, 10

    rates: dict[tuple[str, str], list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="souk-bench-tracing-") as directory,
        SoukSystem(topology(tracing=True), Path(directory) / "on", ready_timeout=90) as on,
        SoukSystem(topology(tracing=False), Path(directory) / "off", ready_timeout=90) as off,
    ):
        systems = {"on": on, "off": off}
        targets = {}
        for mode, system in systems.items():
            product = stocked_product(system)
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            token = customer_token(system.gateway_url, email, PASSWORD)
            targets[mode] = (f"{system.url('catalog')}/products/{product}", token, product)
            asyncio.run(catalog_round(targets[mode][0], 200, args.concurrency))  # warm up
        for round_number in range(1, args.rounds + 1):
            for mode in ("on", "off") if round_number % 2 else ("off", "on"):
                url, token, product = targets[mode]
                processes = pids(systems[mode])
                before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                catalog = asyncio.run(catalog_round(url, args.requests, args.concurrency))
                time.sleep(1)  # the last batch of spans exported and stored
                for name, pid in processes.items():
                    spent = (cpu_seconds(pid) - before[name]) / args.requests * 1e6
                    rates.setdefault((f"cpu {name}", mode), []).append(spent)
                checkout = asyncio.run(
                    checkout_round(
                        systems[mode].gateway_url, token, product, args.orders, args.concurrency
                    )
                )
                rates.setdefault(("catalog", mode), []).append(catalog)
                rates.setdefault(("checkout", mode), []).append(checkout)
            progress(
                f"round {round_number}/{args.rounds}: catalog on/off "
                f"{rates[('catalog', 'on')][-1]:,.0f}/{rates[('catalog', 'off')][-1]:,.0f} req/s,"
                f" checkouts {rates[('checkout', 'on')][-1]:.2f}/"
                f"{rates[('checkout', 'off')][-1]:.2f} orders/s, CPU per catalog request on/off:"
                f" catalog {rates[('cpu catalog', 'on')][-1]:,.0f}/"
                f"{rates[('cpu catalog', 'off')][-1]:,.0f} µs, console"
                f" {rates[('cpu console', 'on')][-1]:,.0f}/"
                f"{rates[('cpu console', 'off')][-1]:,.0f} µs"
            )
        report(rates, args.rounds)  # before the systems stop: a slow stop loses no figure


def report(rates: dict[tuple[str, str], list[float]], rounds: int) -> None:
    print("| name | value |")
    print("|---|---|", flush=True)
    for bench, unit in (("catalog", "req/s"), ("checkout", "orders/s")):
        traced = statistics.median(rates[(bench, "on")])
        untraced = statistics.median(rates[(bench, "off")])
        label = "GET product direct to catalog-1" if bench == "catalog" else "checkouts"
        print(f"| tracing on: {label} | {traced:,.1f} {unit} (median of {rounds}) |")
        print(f"| tracing off: {label} | {untraced:,.1f} {unit} (median of {rounds}) |")
        print(f"| tracing cost, {label} | {(1 - traced / untraced) * 100:+.1f} % throughput |")
    for process in ("catalog", "console"):
        traced = statistics.median(rates[(f"cpu {process}", "on")])
        untraced = statistics.median(rates[(f"cpu {process}", "off")])
        print(
            f"| CPU of {process}-1 per catalog request, tracing on / off |"
            f" {traced:,.0f} / {untraced:,.0f} µs ({(traced / untraced - 1) * 100:+.1f} %) |"
        )


if __name__ == "__main__":
    main()
