"""Checkout benchmark: checkouts completed end to end on `souk up`'s defaults. Prints one table.

Run with `.venv/bin/python bench/checkout.py`. It boots the default topology (SQLite files,
the embedded broker) in a scratch directory, signs up `--customers` customers, and has
`--concurrency` clients each place an order through the gateway (one unit of a product, the
products taken in turn, none more often than it is in stock) and poll it every `--poll`
seconds until it is terminal (CONFIRMED, REJECTED or CANCELLED): the saga's whole run, price →
reserve → authorize → capture → commit, each step a command through orders' outbox, the
broker and orders' consumer. `--warmup` orders go first and are not counted.

- checkouts/s: terminal orders of the measured ones over the wall time from the first POST
  to the last terminal answer;
- p50/p99: seconds from sending the POST to the first GET that shows the order terminal
  (so up to one `--poll` late).

Absolute numbers drift on shared machines (and the benchmark's own clients share the CPU
with the system); compare runs of one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from importlib import resources
from itertools import cycle
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import yaml

from souk.testing import SoukSystem, client_token, customer_token, free_port

TERMINAL = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})
PASSWORD = "bench-opens-the-souk"  # noqa: S105 - a throwaway system's customers
# The development secret of identity's default `orders` client: it may read stock levels.
ORDERS_CLIENT = ("orders", "orders-development-secret")


def topology() -> dict[str, Any]:
    """The default topology with the gateway on a free port, the tokens' issuer with it."""
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    data.pop("data_dir", None)
    port = free_port()
    data["services"]["gateway"]["port"] = port
    for service in data["services"].values():
        for name, value in service.get("env", {}).items():
            if value == "http://localhost:8080":
                service["env"][name] = f"http://127.0.0.1:{port}"
    return data


def progress(line: str) -> None:
    """Show ``line`` on stderr, leaving stdout to the table."""
    print(line, file=sys.stderr, flush=True)


class Checkouts:
    """Places orders and follows each to its end, from ``concurrency`` clients at once."""

    def __init__(
        self,
        gateway: str,
        tokens: list[str],
        products: list[str],
        *,
        poll: float,
    ) -> None:
        self._gateway = gateway
        self._tokens = cycle(tokens)
        self._products = cycle(products)
        self._poll = poll
        self.seconds: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    async def run(self, orders: int, concurrency: int) -> float:
        """Run ``orders`` checkouts; the wall time they took, in seconds."""
        remaining = iter(range(orders))
        connector = aiohttp.TCPConnector(limit=concurrency * 2)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                for _ in remaining:
                    await self._checkout(session)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

    async def _checkout(self, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {next(self._tokens)}"}
        body = {
            "items": [{"product_id": next(self._products), "quantity": 1}],
            "payment": {"card_token": "tok_ok"},
        }
        started = time.perf_counter()
        async with session.post(
            f"{self._gateway}/api/orders",
            json=body,
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        ) as response:
            placed = await response.json()
            if response.status != 201:
                raise RuntimeError(f"POST /api/orders answered {response.status}: {placed}")
        url = f"{self._gateway}/api/orders/{placed['id']}"
        while True:
            async with session.get(url, headers=headers) as response:
                order = await response.json()
            if order["status"] in TERMINAL:
                self.seconds.append(time.perf_counter() - started)
                self.statuses[order["status"]] += 1
                if order["reason"]:
                    self.reasons[order["reason"]] += 1
                return
            await asyncio.sleep(self._poll)


def in_stock(system: SoukSystem) -> dict[str, int]:
    """The products with stock, and how many of each are available."""
    answer = httpx.get(
        f"{system.gateway_url}/api/catalog/products", params={"page_size": 100}, timeout=10
    )
    products = {product["sku"]: product["id"] for product in answer.json()["items"]}
    token = client_token(system.gateway_url, *ORDERS_CLIENT, ["stock:read"])
    levels = httpx.get(
        f"{system.url('inventory')}/stock",
        params={"skus": ",".join(products)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    return {products[level["sku"]]: level["available"] for level in levels if level["available"]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="measured checkouts")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once")
    parser.add_argument("--customers", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between GETs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="souk-bench-") as directory:
        progress("booting the default topology…")
        with SoukSystem(topology(), Path(directory), ready_timeout=60) as system:
            tokens = [
                customer_token(
                    system.gateway_url, f"bench-{uuid.uuid4().hex[:10]}@example.com", PASSWORD
                )
                for _ in range(args.customers)
            ]
            stock = in_stock(system)
            # The products in turn, each at most as often as it is in stock: none runs short.
            products = [
                product
                for turn in range(max(stock.values()))
                for product, available in stock.items()
                if available > turn
            ][: args.orders + args.warmup]
            if len(products) < args.orders + args.warmup:
                parser.error(f"at most {len(products) - args.warmup} orders: the stock")
            progress(f"warming up ({args.warmup} checkouts)…")
            warmup = Checkouts(system.gateway_url, tokens, products[: args.warmup], poll=args.poll)
            asyncio.run(warmup.run(args.warmup, args.concurrency))
            progress(f"measuring {args.orders} checkouts, {args.concurrency} at once…")
            measured = Checkouts(
                system.gateway_url, tokens, products[args.warmup :], poll=args.poll
            )
            elapsed = asyncio.run(measured.run(args.orders, args.concurrency))

    for reason, count in measured.reasons.most_common():
        progress(f"  {count} rejected: {reason}")
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(measured.statuses.items()))
    rows = [
        ("checkouts", f"{len(measured.seconds)} ({outcomes})"),
        ("clients at once", str(args.concurrency)),
        ("checkouts/s", f"{len(measured.seconds) / elapsed:.1f}"),
        ("POST → terminal, p50", f"{percentile(measured.seconds, 0.50) * 1000:.0f} ms"),
        ("POST → terminal, p99", f"{percentile(measured.seconds, 0.99) * 1000:.0f} ms"),
        ("POST → terminal, mean", f"{statistics.fmean(measured.seconds) * 1000:.0f} ms"),
    ]
    title = "checkout saga, souk up defaults"
    width = max(len(name) for name, _ in [*rows, (title, "")])
    print(f"| {title.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
