"""Checkout benchmark: checkouts completed end to end on `souk up`'s defaults. Prints one table.

Run with `.venv/bin/python bench/checkout.py`. It boots the default topology (SQLite files,
the embedded broker) in a scratch directory, signs up `--customers` customers, and has
`--concurrency` clients each place an order through the gateway and wait for its end before
placing the next (one unit of a product, the products taken in turn, none more often than
it is in stock). The saga runs each to its end: price → reserve → authorize → capture →
commit, each step a command through orders' outbox, the broker and orders' consumer. The
benchmark learns that an order is terminal from the `orders` topic (OrderConfirmed,
OrderRejected or OrderCancelled, as a subscriber of its own), so it adds no polling load.
`--warmup` orders go first and are not counted.

- checkouts/s: the measured orders over the wall time from the first POST to the last
  terminal event;
- p50/p99: seconds from sending an order's POST to its terminal event reaching the
  benchmark (the state is committed a relay and a broker hop before that);
- a second table: CPU milliseconds per measured checkout of each service (all its replicas,
  from /proc over the measured run), of the PostgreSQL server with `--database postgres`, and
  of the benchmark's own process (its clients and its subscriber): the cost model's input
  (docs/performance-bus.md). Its last column subtracts what each service spends idle (polls,
  heartbeats, probes, exports; measured for `--idle` seconds before the run) over the run's
  length: on a loaded machine a slower run would otherwise charge each checkout more of it.
  The embedded broker has no process of its own: its work is in the services that publish
  and consume.

`--database postgres` runs the same topology with a PostgreSQL database per service (on the
machine's server, databases of this run's own, dropped afterwards). `--profile DIR` records
py-spy flame graphs (raw collapsed stacks) of orders, order-history, inventory, billing and
notifications (the five that spend most of a checkout's CPU) over the measured run into DIR.

Absolute numbers drift on shared machines (and the benchmark's own clients share the CPU
with the system); compare runs of one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from importlib import resources
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
import yaml

from chassis.messaging import DeadLetter, Delivery, connect
from souk.databases import drop
from souk.shop import ORDERS_CLIENT, Product, order_body
from souk.shop import in_stock as shop_in_stock
from souk.testing import SoukSystem, client_token, customer_token, free_port
from souk.topology import DatabaseSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

TERMINAL_EVENTS = frozenset({"OrderConfirmed", "OrderRejected", "OrderCancelled"})
TOPIC = "orders"
PASSWORD = "bench-opens-the-souk"  # noqa: S105 - a throwaway system's customers
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROFILED = ("orders", "order-history", "inventory", "billing", "notifications")
TICKS = os.sysconf("SC_CLK_TCK")
ATTEMPTS = 4  # a POST whose connection closed under it is sent again, with the same key


def topology(database: DatabaseSpec | None = None) -> dict[str, Any]:
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
    # One client at 127.0.0.1 signing up many customers: lift the edge's default rate
    # limits (docs/security.md), or this measures the rate limiter.
    unlimited = {"rate": 1_000_000, "burst": 1_000_000}
    data["services"]["gateway"].setdefault("env", {})["GATEWAY_RATE_LIMITS"] = {
        "per_ip": unlimited,
        "per_client": unlimited,
        "per_ip_expensive": unlimited,
    }
    if database is not None:
        data["database"] = database.model_dump()
    return data


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def postgres_pids() -> list[int]:
    """The processes of the machine's PostgreSQL server (its backends serve every client)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds of each service (all replicas), of PostgreSQL and of this process."""

    def __init__(self, system: SoukSystem, *, postgres: bool) -> None:
        self._pids: dict[str, list[int]] = {}
        for record in system.state().instances:
            if record.pid:
                self._pids.setdefault(record.service, []).append(record.pid)
        if postgres:
            self._pids["postgresql (whole server)"] = postgres_pids()
        self._pids["benchmark (clients)"] = [os.getpid()]
        self._broker = system.data_dir / "broker" / "bus.sqlite3"
        self._start: dict[str, float] = {}
        self._started_at = 0.0
        self._published_before = 0
        self.used: dict[str, float] = {}
        self.idle: dict[str, float] = {}  # CPU seconds per second with no checkout running
        self.seconds = 0.0
        self.published = 0

    def pids(self, service: str) -> list[int]:
        return self._pids.get(service, [])

    async def measure_idle(self, seconds: float) -> None:
        """Each service's CPU with nothing to do (relay polls, heartbeats, probes, exports)."""
        before, began = self._read(), time.monotonic()
        await asyncio.sleep(seconds)
        after, took = self._read(), time.monotonic() - began
        self.idle = {name: (after[name] - before[name]) / took for name in after}

    def start(self) -> None:
        self._start = self._read()
        self._started_at = time.monotonic()
        self._published_before = self._published()

    def stop(self) -> None:
        end = self._read()
        self.seconds = time.monotonic() - self._started_at
        self.used = {name: end[name] - self._start[name] for name in end}
        self.published = self._published() - self._published_before

    def net(self, name: str) -> float:
        """CPU seconds of ``name`` over the run less what it would have spent idle: a run that
        takes longer (a loaded machine) does not charge the checkouts more idle work."""
        return max(0.0, self.used[name] - self.idle.get(name, 0.0) * self.seconds)

    def _published(self) -> int:
        """Messages appended to the embedded broker's log so far, on every topic."""
        with contextlib.closing(sqlite3.connect(f"file:{self._broker}?mode=ro", uri=True)) as db:
            (total,) = db.execute("SELECT coalesce(sum(last_offset), 0) FROM ends").fetchone()
        return int(total)

    def _read(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self._pids.items()}


@contextlib.contextmanager
def profiling(meter: CpuMeter, directory: Path | None) -> Iterator[None]:
    """py-spy on the PROFILED services while the block runs (if ``directory``)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if directory is None:
        yield
        return
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    directory.mkdir(parents=True, exist_ok=True)
    spies = []
    for service in PROFILED:
        for n, pid in enumerate(meter.pids(service), 1):
            command = [spy, "record", "--nonblocking", "-r", "100", "-f", "raw", "-p", str(pid)]
            output = ["-o", str(directory / f"{service}-{n}.txt")]
            spies.append(
                subprocess.Popen(  # noqa: S603 - our own py-spy on our own children
                    [*command, *output], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
            )
    try:
        yield
    finally:
        for spy_process in spies:
            spy_process.send_signal(2)  # SIGINT: py-spy writes what it recorded
        for spy_process in spies:
            spy_process.wait(30)


def progress(line: str) -> None:
    """Show ``line`` on stderr, leaving stdout to the table."""
    print(line, file=sys.stderr, flush=True)


class Terminal:
    """A subscriber to ``orders``: when each order's terminal event arrived, and which."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.events: dict[str, str] = {}
        self._waiting: dict[str, asyncio.Future[None]] = {}

    async def __call__(self, delivery: Delivery) -> None:
        message = delivery.message
        if message.event_type not in TERMINAL_EVENTS:
            return
        order_id = json.loads(message.payload)["order_id"]
        if order_id in self.at:
            return
        self.at[order_id] = time.perf_counter()
        self.events[order_id] = message.event_type
        waiting = self._waiting.pop(order_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def bury(self, dead_letter: DeadLetter) -> None:
        raise RuntimeError(f"the benchmark's subscriber failed: {dead_letter.error}")

    async def of(self, order_id: str, within: float) -> None:
        """Wait until the order is terminal; TimeoutError after ``within`` seconds."""
        if order_id in self.at:
            return
        waiting = self._waiting.setdefault(order_id, asyncio.get_running_loop().create_future())
        async with asyncio.timeout(within):
            await waiting


class Checkouts:
    """``concurrency`` clients, each placing an order and waiting for its end, then the next."""

    def __init__(
        self,
        gateway: str,
        tokens: list[str],
        products: list[str],
        terminal: Terminal,
        *,
        timeout: float,
    ) -> None:
        self._gateway = gateway
        self._tokens = cycle(tokens)
        self._products = iter(products)
        self._terminal = terminal
        self._timeout = timeout
        self.sent: dict[str, float] = {}
        self.sent_again = 0

    async def run(self, orders: int, concurrency: int) -> None:
        remaining = iter(range(orders))
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def client() -> None:
                for _ in remaining:
                    order_id = await self._place(session)
                    await self._terminal.of(order_id, self._timeout)

            await asyncio.gather(*(client() for _ in range(concurrency)))

    async def _place(self, session: aiohttp.ClientSession) -> str:
        body = order_body(next(self._products))
        headers = {
            "Authorization": f"Bearer {next(self._tokens)}",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        sent = time.perf_counter()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with session.post(
                    f"{self._gateway}/api/orders", json=body, headers=headers
                ) as response:
                    placed = await response.json()
                    status = response.status
            except aiohttp.ServerDisconnectedError:
                if attempt == ATTEMPTS:
                    raise
                status, placed = 0, {}
            if status in (200, 201):  # 200: the same key answered again, the same order
                break
            # A pooled connection closed by the other side as the request went out (the
            # client's to the gateway, or the gateway's to orders: 502 "dropped"), on a
            # loaded machine: send it again. The same Idempotency-Key makes it the same
            # order, never a second one.
            if attempt == ATTEMPTS or status not in (0, 502):
                raise RuntimeError(f"POST /api/orders answered {status}: {placed}")
            self.sent_again += 1
            await asyncio.sleep(0.1 * attempt)
        order_id: str = placed["id"]
        self.sent[order_id] = sent
        return order_id


async def measure(
    system: SoukSystem,
    tokens: list[str],
    products: list[str],
    args: argparse.Namespace,
    meter: CpuMeter,
) -> tuple[Checkouts, Terminal]:
    """Warm up, then run the measured checkouts, each client one order at a time."""
    terminal = Terminal()
    bus = connect(f"embedded://{(system.data_dir / 'broker').resolve()}")
    await bus.start()
    try:
        await bus.subscribe(TOPIC, "bench-checkout", terminal, dead_letters=terminal)
        progress(f"warming up ({args.warmup} checkouts)…")
        warmup = Checkouts(
            system.gateway_url, tokens, products[: args.warmup], terminal, timeout=args.timeout
        )
        await warmup.run(args.warmup, args.concurrency)
        progress(f"measuring {args.orders} checkouts, {args.concurrency} clients at once…")
        measured = Checkouts(
            system.gateway_url, tokens, products[args.warmup :], terminal, timeout=args.timeout
        )
        if args.idle > 0:
            progress(f"measuring the idle CPU ({args.idle:g} s)…")
            await asyncio.sleep(2)  # the warm-up's last messages settle
            await meter.measure_idle(args.idle)
        meter.start()
        with profiling(meter, args.profile):
            await measured.run(args.orders, args.concurrency)
        meter.stop()
        if measured.sent_again:
            progress(f"{measured.sent_again} POSTs sent again (a connection closed under them)")
    finally:
        await bus.close()
    return measured, terminal


def in_stock(system: SoukSystem) -> dict[str, int]:
    """The products with stock, and how many of each are available."""
    # A service's token comes from identity directly, never through the public edge.
    token = client_token(system.url("identity"), *system.client_credentials(ORDERS_CLIENT),
                         ["stock:read"])  # fmt: skip

    async def ask() -> list[Product]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await shop_in_stock(client, system.gateway_url, system.url("inventory"), token)

    return {product.id: product.available for product in asyncio.run(ask())}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="measured checkouts")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once")
    parser.add_argument("--customers", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait per order")
    parser.add_argument(
        "--database", choices=["sqlite", "postgres"], default="sqlite", help="the services' DBs"
    )
    parser.add_argument("--profile", type=Path, help="write py-spy profiles here")
    parser.add_argument(
        "--idle",
        type=float,
        default=5,
        help="seconds of idle CPU measured before the run (the 'net of idle' column; 0: none)",
    )
    args = parser.parse_args()
    database = None
    if args.database == "postgres":
        database = DatabaseSpec(
            backend="postgres",
            url=POSTGRES_ADMIN_URL,
            mode="per-service",
            prefix=f"souk_bench_{secrets.token_hex(4)}",
        )
    shape = topology(database)
    try:
        run(shape, args, parser)
    finally:
        if database is not None:
            stateful = [n for n, spec in shape["services"].items() if spec.get("database", True)]
            asyncio.run(drop(database, stateful))


def run(shape: dict[str, Any], args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Boot the system, sign the customers up, run the checkouts and print the tables.

    The tables are printed before the system stops: on a loaded machine its stop can outlast
    the orchestrator's grace and raise, which must not lose what was measured.
    """
    with tempfile.TemporaryDirectory(prefix="souk-bench-") as directory:
        progress(f"booting the default topology ({args.database})…")
        with SoukSystem(shape, Path(directory), ready_timeout=60) as system:
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
            meter = CpuMeter(system, postgres=args.database == "postgres")
            measured, terminal = asyncio.run(measure(system, tokens, products, args, meter))
            report(measured, terminal, meter, args)


def report(
    measured: Checkouts, terminal: Terminal, meter: CpuMeter, args: argparse.Namespace
) -> None:
    """Print the table of checkouts, then the table of CPU per checkout."""
    seconds = [terminal.at[order_id] - sent for order_id, sent in measured.sent.items()]
    elapsed = max(terminal.at[o] for o in measured.sent) - min(measured.sent.values())
    outcomes = Counter(terminal.events[order_id] for order_id in measured.sent)
    rows = [
        ("checkouts", f"{len(seconds)} ({', '.join(f'{n} {e}' for e, n in outcomes.items())})"),
        ("clients at once", str(args.concurrency)),
        ("checkouts/s", f"{len(seconds) / elapsed:.1f}"),
        ("POST → terminal event, p50", f"{percentile(seconds, 0.50) * 1000:.0f} ms"),
        ("POST → terminal event, p99", f"{percentile(seconds, 0.99) * 1000:.0f} ms"),
        ("POST → terminal event, mean", f"{statistics.fmean(seconds) * 1000:.0f} ms"),
        ("broker messages per checkout", f"{meter.published / len(seconds):.1f}"),
    ]
    title = "checkout saga, souk up defaults" + (
        " on PostgreSQL" if args.database == "postgres" else ""
    )
    width = max(len(name) for name, _ in [*rows, (title, "")])
    print(f"| {title.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    checkouts = len(seconds)
    costs = sorted(meter.used.items(), key=lambda item: -item[1])
    total = sum(used for name, used in costs if not name.startswith("benchmark"))
    net_total = sum(meter.net(name) for name, _ in costs if not name.startswith("benchmark"))
    cost_rows = [
        (
            name,
            f"{used * 1000 / checkouts:.1f}",
            f"{used / elapsed:.2f}",
            f"{meter.net(name) * 1000 / checkouts:.1f}",
        )
        for name, used in costs
    ]
    cost_rows.append(
        ("souk total (all but the benchmark)", f"{total * 1000 / checkouts:.1f}",
         f"{total / elapsed:.2f}", f"{net_total * 1000 / checkouts:.1f}")
    )  # fmt: skip
    width = max(len(name) for name, *_ in [*cost_rows, ("CPU per checkout", "", "", "")])
    print()
    # The last column: less each service's idle CPU over the run's length (--idle), so a run
    # slowed by a loaded machine does not charge the checkouts its polls and probes.
    print(
        f"| {'CPU per checkout'.ljust(width)} | CPU ms/checkout | cores busy "
        "| net of idle, ms/checkout |"
    )
    print(f"|{'-' * (width + 2)}|-----------------|------------|--------------------------|")
    for name, per_checkout, cores, net in cost_rows:
        print(f"| {name.ljust(width)} | {per_checkout} | {cores} | {net} |")


if __name__ == "__main__":
    main()
