"""`souk chaos`: named faults injected into a running system during a burst of checkouts.

Each scenario drives its own burst of checkouts through the gateway (as customers would:
an Idempotency-Key per order, the same key again after a lost answer), injects one fault
into one instance while the burst runs (SIGSTOP then SIGCONT, or SIGKILL and the
supervisor's restart; the pid comes from `souk up`'s state file, never from a process
name), and then asks each service whether the system is whole again:

- **terminal**: every order of the burst reached an end (confirmed, rejected, cancelled,
  with nothing left to undo) within the bound, and each Idempotency-Key made one order;
- **stock**: on-hand before - after = the units of the confirmed orders, and no
  reservation is left held;
- **payments**: across both providers exactly one capture per confirmed order, none for any
  other, and no authorization left holding money;
- **notifications**: no customer told twice of the same thing about the same order;
- **history**: order-history shows each order with the status orders gives it;
- **dead letters**: no message given up on during the scenario.

Each row also gives the burst's checkout latency: from the moment the client first sent an
order to the moment a watcher (asking for each open order every half second) saw it
terminal; its p99 shows whether a fault costs what the breaker allows, not timeout times retries.

Invariants that settle by themselves (a saga compensating, billing settling a claim a
frozen provider never answered) are asked again until they hold or ``settle`` seconds pass.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import random
import secrets
import shlex
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.markup import escape
from rich.table import Table

from souk.dead_letters import ServiceDeadLetters, list_everywhere, ready_urls
from souk.install_secrets import client_secret
from souk.shop import ORDERS_CLIENT, Product, in_stock, order_body
from souk.state import InstanceRecord, InstanceState, SoukState, pid_alive, read_state
from souk.tokens import TokenError, client_token, customer_token
from souk.topology import load_topology

INVARIANTS = ("terminal", "stock", "payments", "notifications", "history", "dead letters")
PROVIDERS = ("payment-primary", "payment-backup")
PASSWORD = "chaos-opens-the-souk"  # noqa: S105 - the throwaway customers of a chaos run
# Answers after which a client sends the same order again, with the same Idempotency-Key.
_RETRIED = frozenset({409, 425, 429, 500, 502, 503, 504})
_SETUP_ATTEMPTS = 5
TOKEN_REFRESH = 300.0  # seconds after which the customers sign in again
_TERMINAL = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})


class ChaosError(Exception):
    """The system is not in a state to run a scenario (not running, not ready...)."""


@dataclass(frozen=True)
class Options:
    """How big the burst is, how long faults last and how long the system gets to settle."""

    burst: int = 40
    concurrency: int = 8
    customers: int = 4
    fault_seconds: float | None = None  # None: each scenario's own duration
    settle: float = 180.0
    request_timeout: float = 10.0
    give_up_after: float = 120.0
    broker_restart_command: str | None = None


@dataclass
class Check:
    """One invariant of one scenario: PASS, FAIL or SKIP, with the numbers behind it."""

    invariant: str
    ok: bool | None
    detail: str

    @property
    def verdict(self) -> str:
        return "SKIP" if self.ok is None else "PASS" if self.ok else "FAIL"


@dataclass(frozen=True)
class Latency:
    """Seconds from an order's first send to its terminal state, over a burst's orders."""

    count: int
    p50: float
    p99: float
    longest: float
    unseen: int = 0  # orders never seen terminal while they were watched

    def __str__(self) -> str:
        text = f"{self.p99:.2f} s (p50 {self.p50:.2f}, max {self.longest:.2f}, n={self.count})"
        return text + (f", {self.unseen} not seen terminal" if self.unseen else "")


def percentile(samples: Iterable[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest sample with ``fraction`` of them at or
    below it (``percentile(xs, 0.99)`` of 100 samples is the 99th smallest)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def checkout_latency(
    sent_at: dict[str, float], placed: dict[str, str], terminal_at: dict[str, float]
) -> Latency | None:
    """The latency of each placed order (key → first send, key → order id, order id → seen
    terminal); None when no order was seen terminal."""
    seconds = [
        terminal_at[order_id] - sent_at[key]
        for key, order_id in placed.items()
        if order_id in terminal_at and key in sent_at
    ]
    if not seconds:
        return None
    return Latency(
        count=len(seconds),
        p50=percentile(seconds, 0.5),
        p99=percentile(seconds, 0.99),
        longest=max(seconds),
        unseen=len(placed) - len(seconds),
    )


@dataclass
class Outcome:
    """What a scenario did and what it found."""

    scenario: str
    fault: str
    checks: list[Check] = field(default_factory=list)
    skipped: str | None = None
    latency: Latency | None = None

    @property
    def failed(self) -> bool:
        return any(check.ok is False for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "fault": self.fault,
            "skipped": self.skipped,
            "checkout_latency_seconds": None
            if self.latency is None
            else {
                "p50": self.latency.p50,
                "p99": self.latency.p99,
                "max": self.latency.longest,
                "count": self.latency.count,
                "unseen": self.latency.unseen,
            },
            "checks": {
                c.invariant: {"verdict": c.verdict, "detail": c.detail} for c in self.checks
            },
        }


# -- the running system -------------------------------------------------------------------


class RunningSystem:
    """The system `souk up` runs on ``data_dir``, seen through its state file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def state(self) -> SoukState:
        state = read_state(self.data_dir)
        if state is None or state.stopped_at is not None or not pid_alive(state.pid):
            raise ChaosError(f"no `souk up` is running on {self.data_dir}")
        return state

    def instance(self, instance_id: str) -> InstanceRecord:
        found = self.state().find(instance_id)
        if found is None:
            raise ChaosError(f"the running system has no instance {instance_id!r}")
        return found

    def first(self, service: str) -> InstanceRecord:
        found = self.state().of_service(service)
        if not found:
            raise ChaosError(f"the running system has no service {service!r}")
        return found[0]

    def url(self, service: str) -> str:
        return self.first(service).url

    def signal(self, instance_id: str, signum: int) -> int:
        """Signal the instance's current process (its pid from the state file)."""
        record = self.instance(instance_id)
        if record.pid is None or not pid_alive(record.pid):
            raise ChaosError(f"{instance_id} has no running process right now")
        os.kill(record.pid, signum)
        return record.pid

    async def wait_ready(self, within: float) -> None:
        """Until every instance is ready (the supervisor restarted what was killed)."""
        deadline = time.monotonic() + within
        while True:
            state = self.state()
            late = [r.instance for r in state.instances if r.state is not InstanceState.READY]
            if not late:
                return
            if time.monotonic() > deadline:
                raise ChaosError(f"not ready after {within:g} s: {', '.join(late)}")
            await asyncio.sleep(0.2)

    async def wait_replaced(self, instance_id: str, pid: int, within: float) -> int:
        """Until the supervisor runs a new, ready process for the instance; its pid."""
        deadline = time.monotonic() + within
        while True:
            record = self.instance(instance_id)
            if record.pid not in (None, pid) and record.state is InstanceState.READY:
                return record.pid
            if time.monotonic() > deadline:
                raise ChaosError(f"{instance_id} was not back within {within:g} s")
            await asyncio.sleep(0.1)

    def broker_kind(self) -> str:
        return load_topology(Path(self.state().topology)).broker.kind


# -- faults ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A fault: what it does to whom, and for how long by default."""

    name: str
    summary: str
    instance: str
    action: str  # freeze, kill, kill-twice, restart-broker
    seconds: float = 0.0

    def skip_reason(self, system: RunningSystem, options: Options) -> str | None:
        if self.action != "restart-broker":
            return None
        kind = system.broker_kind()
        if kind == "embedded":
            return (
                "the embedded broker is a file every service opens, with no process of its own "
                "to restart"
            )
        if options.broker_restart_command is None:
            return f"a {kind} server is not run by souk: give --broker-restart-command"
        return None

    async def inject(self, system: RunningSystem, options: Options) -> str:
        """Do it; return what was done, for the table."""
        seconds = self.seconds if options.fault_seconds is None else options.fault_seconds
        if self.action == "freeze":
            return await _freeze(system, self.instance, seconds)
        if self.action == "kill":
            pid = system.signal(self.instance, signal.SIGKILL)
            await system.wait_replaced(self.instance, pid, 90)
            return f"SIGKILL {self.instance} (pid {pid}); restarted"
        if self.action == "kill-twice":
            first = system.signal(self.instance, signal.SIGKILL)
            second = await _signal_when_replaced(system, self.instance, first)
            await system.wait_replaced(self.instance, second, 90)
            return f"SIGKILL {self.instance} (pid {first}), then its successor (pid {second})"
        if self.action == "restart-broker":
            command = options.broker_restart_command or ""
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(*shlex.split(command))
            code = await process.wait()
            if code != 0:
                raise ChaosError(f"{command!r} exited with {code}")
            return f"ran {command!r} ({time.monotonic() - started:.1f} s)"
        raise ValueError(f"unknown fault {self.action!r}")


async def _freeze(system: RunningSystem, instance: str, seconds: float) -> str:
    pid = system.signal(instance, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        # Thawed whatever happens (Ctrl-C included): a frozen instance stays frozen otherwise.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    return f"SIGSTOP {instance} (pid {pid}) for {seconds:g} s"


async def _signal_when_replaced(system: RunningSystem, instance: str, pid: int) -> int:
    """SIGKILL the instance's next process as soon as the supervisor has started it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = system.instance(instance)
        if record.pid not in (None, pid) and pid_alive(record.pid):
            await asyncio.sleep(0.3)  # long enough to be starting up, not to be ready
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
            return record.pid
        await asyncio.sleep(0.05)
    raise ChaosError(f"{instance} was not restarted within 30 s")


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "freeze-primary-provider",
            "the primary payment provider stops answering (SIGSTOP), then wakes",
            "payment-primary-1",
            "freeze",
            20,
        ),
        Scenario(
            "kill-primary-provider",
            "the primary payment provider dies (SIGKILL) and is restarted, its books lost",
            "payment-primary-1",
            "kill",
        ),
        Scenario(
            "freeze-inventory-replica",
            "one inventory replica stops answering (SIGSTOP), then wakes",
            "inventory-1",
            "freeze",
            20,
        ),
        Scenario(
            "kill-gateway",
            "the gateway dies mid-burst; clients send again with the same Idempotency-Key",
            "gateway-1",
            "kill",
        ),
        Scenario(
            "kill-orders-twice",
            "orders dies, and its successor dies again while starting",
            "orders-1",
            "kill-twice",
        ),
        Scenario(
            "freeze-orders",
            "orders stops (SIGSTOP) past the saga's step deadlines (60 s), then wakes",
            "orders-1",
            "freeze",
            65,
        ),
        Scenario("kill-identity", "identity dies and is restarted", "identity-1", "kill"),
        Scenario(
            "freeze-identity",
            "identity stops answering (SIGSTOP): signing keys and revocations go stale",
            "identity-1",
            "freeze",
            30,
        ),
        Scenario(
            "restart-broker",
            "the broker server restarts (RabbitMQ, NATS, Kafka)",
            "",
            "restart-broker",
        ),
    )
}


# -- the shoppers and their burst -----------------------------------------------------------


@dataclass
class Customer:
    email: str
    token: str
    subject: str


def _subject(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    subject: str = claims["sub"]
    return subject


def sign_up(gateway: str, count: int) -> list[Customer]:
    """``count`` new customers of this run, each with an access token."""
    run = secrets.token_hex(4)
    customers = []
    for n in range(count):
        email = f"chaos-{run}-{n}@example.com"
        token = _token(gateway, email)
        customers.append(Customer(email, token, _subject(token)))
    return customers


def sign_in_again(gateway: str, customers: list[Customer]) -> list[Customer]:
    """The same customers with new access tokens."""
    return [Customer(c.email, _token(gateway, c.email), c.subject) for c in customers]


def _token(gateway: str, email: str) -> str:
    """The customer's token, registering them if new; asked again a few times, since signing
    up hashes a password and a loaded identity may answer the edge too late (504). Asking
    again is safe: an email already registered is signed in."""
    for attempt in range(1, _SETUP_ATTEMPTS + 1):
        try:
            return customer_token(gateway, email, PASSWORD)
        except (httpx.HTTPError, TokenError):
            if attempt == _SETUP_ATTEMPTS:
                raise
            time.sleep(3)
    raise AssertionError("unreachable")


@dataclass
class Burst:
    """Checkouts placed by ``concurrency`` clients; a lost answer is sent again, same key."""

    gateway: str
    customers: list[Customer]
    products: list[Product]
    options: Options
    placed: dict[str, str] = field(default_factory=dict)  # key → order id
    unanswered: list[str] = field(default_factory=list)  # keys never answered
    resent: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    sent_at: dict[str, float] = field(default_factory=dict)  # key → first send (monotonic)
    terminal_at: dict[str, float] = field(default_factory=dict)  # order id → seen terminal
    _tokens: dict[str, str] = field(default_factory=dict)  # order id → its customer's token
    _done: bool = False

    async def run(self) -> None:
        work = iter(range(self.options.burst))
        customers = iter(self.customers * (self.options.burst // len(self.customers) + 1))
        products = iter(self.products)
        sent = 0
        limits = httpx.Limits(max_connections=self.options.concurrency)
        async with httpx.AsyncClient(
            base_url=self.gateway,
            timeout=self.options.request_timeout,
            trust_env=False,
            limits=limits,
        ) as client:

            async def shopper() -> None:
                nonlocal sent
                for _ in work:
                    customer, product = next(customers), next(products)
                    sent += 1
                    if sent >= max(1, self.options.burst // 4):
                        self.started.set()  # a quarter is on its way: time for the fault
                    await self._place(client, customer, product)

            await asyncio.gather(*(shopper() for _ in range(self.options.concurrency)))
        self.started.set()
        self._done = True

    async def watch(self, within: float) -> None:
        """Note when each placed order is first seen terminal, asking for every open one
        every half second, until the burst is over and none is open (or ``within`` s)."""
        give_up = time.monotonic() + within
        asking = asyncio.Semaphore(self.options.concurrency)
        async with httpx.AsyncClient(
            base_url=self.gateway, timeout=self.options.request_timeout, trust_env=False
        ) as client:

            async def look(order_id: str) -> None:
                async with asking:
                    try:
                        answer = await client.get(
                            f"/api/orders/{order_id}",
                            headers={"Authorization": f"Bearer {self._tokens[order_id]}"},
                        )
                        order = answer.json() if answer.status_code == 200 else None
                    except (httpx.HTTPError, ValueError):
                        return  # the gateway may be the fault: asked again next round
                if order is not None and _is_terminal(order):
                    self.terminal_at.setdefault(order_id, time.monotonic())

            while time.monotonic() < give_up:
                open_orders = [oid for oid in self._tokens if oid not in self.terminal_at]
                if self._done and not open_orders:
                    return
                await asyncio.gather(*(look(order_id) for order_id in open_orders))
                await asyncio.sleep(0.5)

    async def _place(self, client: httpx.AsyncClient, customer: Customer, product: Product) -> None:
        key = str(uuid.uuid4())
        headers = {"Authorization": f"Bearer {customer.token}", "Idempotency-Key": key}
        give_up = time.monotonic() + self.options.give_up_after
        self.sent_at[key] = time.monotonic()
        delay = 0.2
        while True:
            wait = delay
            try:
                answer = await client.post(
                    "/api/orders", json=order_body(product.id), headers=headers
                )
            except httpx.TransportError:
                pass
            else:
                if answer.status_code in (200, 201):
                    order_id = answer.json()["id"]
                    self.placed[key] = order_id
                    self._tokens[order_id] = customer.token
                    return
                if answer.status_code not in _RETRIED:
                    raise ChaosError(
                        f"POST /api/orders answered {answer.status_code}: {answer.text[:300]}"
                    )
                with contextlib.suppress(ValueError):
                    wait = max(wait, float(answer.headers.get("retry-after", "0")))
            if time.monotonic() + wait > give_up:
                self.unanswered.append(key)
                return
            self.resent += 1
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
            delay = min(delay * 2, 3.0)


# -- asking the services --------------------------------------------------------------------


@dataclass
class Before:
    """What the services said before the burst."""

    stock: dict[str, tuple[int, int]]  # sku → (on hand, reserved)
    orders: set[str]
    authorizations: set[str]
    dead_letters: set[tuple[str, int]]


class Services:
    """Each service's API, as the operator's tools reach it."""

    def __init__(self, system: RunningSystem, client: httpx.AsyncClient) -> None:
        self.system = system
        self.client = client
        self._service_token: str | None = None

    async def service_token(self) -> str:
        if self._service_token is None:
            secret = client_secret(self.system.data_dir, ORDERS_CLIENT)
            identity = self.system.url("identity")
            scopes = ["stock:read", "payments:read"]
            self._service_token = await asyncio.to_thread(
                client_token, identity, ORDERS_CLIENT, secret, scopes
            )
        return self._service_token

    async def _get(self, url: str, **kwargs: Any) -> Any:
        answer = await self.client.get(url, **kwargs)
        answer.raise_for_status()
        return answer.json()

    async def stock(self, skus: Iterable[str]) -> dict[str, tuple[int, int]]:
        token = await self.service_token()
        levels = await self._get(
            f"{self.system.url('inventory')}/stock",
            params={"skus": ",".join(sorted(skus))},
            headers={"Authorization": f"Bearer {token}"},
        )
        return {level["sku"]: (level["on_hand"], level["reserved"]) for level in levels}

    async def _pages(self, path: str, token: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = await self._get(
                f"{self.system.url('gateway')}{path}",
                params={"page": page, "page_size": 100},
                headers={"Authorization": f"Bearer {token}"},
            )
            items.extend(body["items"])
            if page >= body["pages"]:
                return items
            page += 1

    async def orders(self, customers: list[Customer]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for customer in customers:
            for order in await self._pages("/api/orders", customer.token):
                found[order["id"]] = order
        return found

    async def notifications(self, customers: list[Customer]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for customer in customers:
            found.extend(await self._pages("/api/notifications", customer.token))
        return found

    async def history(self, customers: list[Customer]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for customer in customers:
            path = f"/api/order-history/customers/{customer.subject}/orders"
            for order in await self._pages(path, customer.token):
                found[order["order_id"]] = order
        return found

    async def payments(self, order_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        token = await self.service_token()
        billing = self.system.url("billing")
        found = {}
        for order_id in order_ids:
            found[order_id] = await self._get(
                f"{billing}/payments",
                params={"order_id": order_id},
                headers={"Authorization": f"Bearer {token}"},
            )
        return found

    async def authorizations(self) -> dict[str, list[dict[str, Any]]]:
        """Every authorization in each provider's books."""
        return {
            provider: await self._get(f"{self.system.url(provider)}/v1/authorizations")
            for provider in PROVIDERS
        }

    async def dead_letters(self) -> dict[tuple[str, int], str]:
        state = self.system.state()
        boxes = [ServiceDeadLetters(n, urls, self.client) for n, urls in ready_urls(state).items()]
        letters, failures = await list_everywhere(boxes)
        if failures:
            raise ChaosError("; ".join(failures.values()))
        return {
            (letter.service, letter.id): f"{letter.service} {letter.topic}: {letter.error}"
            for letter in letters
        }

    async def before(self, customers: list[Customer], skus: Iterable[str]) -> Before:
        authorizations = await self.authorizations()
        return Before(
            stock=await self.stock(skus),
            orders=set(await self.orders(customers)),
            authorizations={a["id"] for found in authorizations.values() for a in found},
            dead_letters=set(await self.dead_letters()),
        )


# -- the invariants -------------------------------------------------------------------------


def _is_terminal(order: dict[str, Any]) -> bool:
    return order["status"] in _TERMINAL and not order["compensations_pending"]


def _few(items: Iterable[str], at_most: int = 3) -> str:
    shown = list(items)
    more = f" +{len(shown) - at_most}" if len(shown) > at_most else ""
    return ", ".join(item[:8] for item in shown[:at_most]) + more


async def check(
    services: Services,
    before: Before,
    burst: Burst,
    customers: list[Customer],
    restarted_providers: set[str],
) -> list[Check]:
    """Ask every service about the burst's orders; one Check per invariant."""
    listed = await services.orders(customers)
    ours = {order_id: order for order_id, order in listed.items() if order_id not in before.orders}
    checks = [_terminal(ours, burst)]
    confirmed = {oid: o for oid, o in ours.items() if o["status"] == "CONFIRMED"}
    checks.append(await _stock(services, before, confirmed))
    payments = await services.payments(ours)
    authorizations = await services.authorizations()
    checks.append(_payments(ours, payments, authorizations, before, restarted_providers))
    checks.append(_notifications(await services.notifications(customers), ours))
    checks.append(_history(await services.history(customers), ours))
    letters = await services.dead_letters()
    new = [text for key, text in letters.items() if key not in before.dead_letters]
    checks.append(
        Check("dead letters", not new, f"{len(new)} new: {new[0][:80]}" if new else "none new")
    )
    return checks


def _terminal(ours: dict[str, dict[str, Any]], burst: Burst) -> Check:
    pending = [oid for oid, order in ours.items() if not _is_terminal(order)]
    unknown = set(ours) - set(burst.placed.values())  # placed, but no answer said so
    problems = []
    if pending:
        problems.append(f"{len(pending)} not terminal ({_few(pending)})")
    if burst.unanswered:
        problems.append(f"{len(burst.unanswered)} keys never answered")
    if unknown:
        problems.append(f"{len(unknown)} orders no key was answered with")
    statuses = Counter(order["status"] for order in ours.values())
    summary = " ".join(f"{n} {status.lower()}" for status, n in sorted(statuses.items()))
    if problems:
        return Check("terminal", False, "; ".join(problems))
    reasons = Counter(o["reason"] for o in ours.values() if o["status"] == "REJECTED")
    why = "".join(f"; {n}x {reason}" for reason, n in reasons.most_common(2))
    return Check("terminal", True, f"{len(ours)}/{len(ours)} ({summary}){why}")


async def _stock(services: Services, before: Before, confirmed: dict[str, dict[str, Any]]) -> Check:
    after = await services.stock(before.stock)
    sold: Counter[str] = Counter()
    for order in confirmed.values():
        for line in order["items"]:
            sold[line["sku"] or line["product_id"]] += line["quantity"]
    taken = {sku: before.stock[sku][0] - after[sku][0] for sku in before.stock}
    wrong = [
        f"{sku}: -{taken[sku]} on hand, {sold[sku]} sold"
        for sku in taken
        if taken[sku] != sold[sku]
    ]
    held = {sku: after[sku][1] - before.stock[sku][1] for sku in before.stock}
    still = [f"{sku}: {n} reserved" for sku, n in held.items() if n]
    if wrong or still:
        return Check("stock", False, "; ".join([*wrong, *still][:3]))
    return Check("stock", True, f"-{sum(taken.values())} on hand = {sum(sold.values())} sold")


def _payments(
    ours: dict[str, dict[str, Any]],
    payments: dict[str, list[dict[str, Any]]],
    authorizations: dict[str, list[dict[str, Any]]],
    before: Before,
    restarted: set[str],
) -> Check:
    captures, held, stray = _books(payments, authorizations, before)
    forgotten = _forgotten(payments, authorizations, restarted)
    captures.update(forgotten)
    confirmed = [oid for oid, order in ours.items() if order["status"] == "CONFIRMED"]
    wrong = [oid for oid in confirmed if captures[oid] != 1]
    others = [oid for oid in ours if oid not in confirmed and captures[oid]]
    problems = [
        text
        for count, text in (
            (len(wrong), f"{len(wrong)} confirmed without exactly one capture ({_few(wrong)})"),
            (len(others), f"{len(others)} unconfirmed captured ({_few(others)})"),
            (stray, f"{stray} captures for no payment of billing's"),
            (held, f"{held} authorizations still held"),
        )
        if count
    ]
    if problems:
        return Check("payments", False, "; ".join(problems))
    total = sum(forgotten.values())
    note = f" ({total} from billing: provider restarted)" if total else ""
    return Check("payments", True, f"{sum(captures.values())} captures, 0 held{note}")


def _books(
    payments: dict[str, list[dict[str, Any]]],
    authorizations: dict[str, list[dict[str, Any]]],
    before: Before,
) -> tuple[Counter[str], int, int]:
    """From the providers' books, made since ``before``: captures per order, authorizations
    still holding money, and captures for no payment billing knows."""
    order_of = {p["id"]: oid for oid, found in payments.items() for p in found}
    captures: Counter[str] = Counter()
    held = stray = 0
    for found in authorizations.values():
        for authorization in found:
            if authorization["id"] in before.authorizations:
                continue
            order_id = order_of.get(authorization["reference"])
            status = authorization["status"]
            held += status == "authorized"
            if status in ("captured", "refunded"):  # a refund was a capture first
                if order_id is None:
                    stray += 1
                else:
                    captures[order_id] += 1
    return captures, held, stray


def _forgotten(
    payments: dict[str, list[dict[str, Any]]],
    authorizations: dict[str, list[dict[str, Any]]],
    restarted: set[str],
) -> Counter[str]:
    """Captures a restarted provider forgot (its books live in memory): billing's word."""
    forgotten: Counter[str] = Counter()
    for order_id, found in payments.items():
        for payment in found:
            provider = payment["provider"]
            if provider not in restarted or payment["status"] not in ("CAPTURED", "REFUNDED"):
                continue
            if not any(a["reference"] == payment["id"] for a in authorizations[provider]):
                forgotten[order_id] += 1
    return forgotten


def _notifications(found: list[dict[str, Any]], ours: dict[str, dict[str, Any]]) -> Check:
    told = Counter((n["order_id"], n["subject"]) for n in found if n["order_id"] in ours)
    twice = [f"{order_id[:8]} {subject} x{n}" for (order_id, subject), n in told.items() if n > 1]
    if twice:
        return Check("notifications", False, f"{len(twice)} duplicates: {', '.join(twice[:2])}")
    return Check("notifications", True, f"{sum(told.values())}, none twice")


def _history(found: dict[str, dict[str, Any]], ours: dict[str, dict[str, Any]]) -> Check:
    missing = [oid for oid in ours if oid not in found]
    differ = [
        oid
        for oid, order in ours.items()
        if oid in found and found[oid]["status"] != order["status"]
    ]
    if missing or differ:
        return Check("history", False, f"{len(missing)} missing, {len(differ)} differ")
    return Check("history", True, f"{len(ours)} agree")


# -- a whole scenario -----------------------------------------------------------------------


async def run_scenario(
    scenario: Scenario,
    system: RunningSystem,
    options: Options,
    customers: list[Customer],
    report: Callable[[str], None],
) -> Outcome:
    """Burst, fault, then the invariants until they hold or ``options.settle`` passes."""
    async with httpx.AsyncClient(timeout=options.request_timeout, trust_env=False) as client:
        services = Services(system, client)
        wanted, before = await _ready_to_shop(scenario, services, customers, options, report)
        gateway = system.url("gateway")
        providers_before = {p: system.instance(f"{p}-1").pid for p in PROVIDERS}
        burst = Burst(gateway, customers, wanted, options)
        report(f"{scenario.name}: {options.burst} checkouts, {options.concurrency} at once")
        shopping = asyncio.create_task(burst.run())
        watching = asyncio.create_task(burst.watch(options.give_up_after + options.settle))
        try:
            await burst.started.wait()
            try:
                fault = await scenario.inject(system, options)
            except BaseException:
                shopping.cancel()
                raise
            report(f"{scenario.name}: {fault}")
            await shopping
            await system.wait_ready(90)
            restarted = {
                p for p, pid in providers_before.items() if system.instance(f"{p}-1").pid != pid
            }
            report(f"{scenario.name}: checking the invariants (up to {options.settle:g} s)")
            deadline = time.monotonic() + options.settle
            while True:
                try:
                    checks = await check(services, before, burst, customers, restarted)
                except (httpx.HTTPError, TokenError, ChaosError) as error:
                    checks = [
                        Check(name, False, f"could not ask: {described(error)}")
                        for name in INVARIANTS
                    ]
                if all(c.ok for c in checks) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(2)
            # The watcher sees the last orders terminal within a round or two of the checks.
            await asyncio.wait({watching}, timeout=5)
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
    latency = checkout_latency(burst.sent_at, burst.placed, burst.terminal_at)
    return Outcome(scenario.name, fault, checks, latency=latency)


def described(error: BaseException) -> str:
    """The error's message, or its kind when it has none (httpx's timeouts)."""
    return str(error) or type(error).__name__


async def _ready_to_shop(
    scenario: Scenario,
    services: Services,
    customers: list[Customer],
    options: Options,
    report: Callable[[str], None],
) -> tuple[list[Product], Before]:
    """The products of the burst and the services' word before it, once they answer: the
    previous scenario may have restarted an instance that is ready but still slow."""
    system = services.system
    for attempt in range(1, _SETUP_ATTEMPTS + 1):
        try:
            await system.wait_ready(90)
            token = await services.service_token()
            products = await in_stock(
                services.client, system.url("gateway"), system.url("inventory"), token
            )
            wanted = _spread(products, options.burst)
            return wanted, await services.before(customers, {p.sku for p in wanted})
        except (httpx.HTTPError, TokenError) as error:
            if attempt == _SETUP_ATTEMPTS:
                raise
            report(f"{scenario.name}: the system does not answer yet ({described(error)})")
            await asyncio.sleep(3)
    raise AssertionError("unreachable")


def _spread(products: list[Product], count: int) -> list[Product]:
    """``count`` products in turn, none more often than it has stock available."""
    spread = [
        product
        for turn in range(max((p.available for p in products), default=0))
        for product in products
        if product.available > turn
    ]
    if len(spread) < count:
        raise ChaosError(f"only {len(spread)} units in stock: a burst of at most that many")
    return spread[:count]


async def run(
    system: RunningSystem, names: list[str], options: Options, report: Callable[[str], None]
) -> list[Outcome]:
    """Run the named scenarios one after another on a system `souk up` runs."""
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise ChaosError(f"no scenario {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    await system.wait_ready(30)
    customers: list[Customer] = []
    signed_in = 0.0
    outcomes = []
    for name in names:
        scenario = SCENARIOS[name]
        skip = scenario.skip_reason(system, options)
        if skip is not None:
            outcomes.append(Outcome(name, "-", [Check(i, None, skip) for i in INVARIANTS], skip))
            continue
        try:
            gateway = system.url("gateway")
            if not customers:
                customers = await asyncio.to_thread(sign_up, gateway, options.customers)
                signed_in = time.monotonic()
            elif time.monotonic() - signed_in > TOKEN_REFRESH:  # access tokens live 10 min
                customers = await asyncio.to_thread(sign_in_again, gateway, customers)
                signed_in = time.monotonic()
            outcomes.append(await run_scenario(scenario, system, options, customers, report))
        except (httpx.HTTPError, TokenError, ChaosError) as error:
            # The scenario could not be run to its end: a failure, and the next one goes on.
            why = f"could not run: {described(error)}"
            report(f"{name}: {why}")
            outcomes.append(Outcome(name, "-", [Check(i, False, why) for i in INVARIANTS]))
    return outcomes


def outcome_table(outcomes: list[Outcome]) -> Table:
    """Scenario x invariant, each cell PASS/FAIL/SKIP with its numbers."""
    table = Table(title="souk chaos", title_justify="left", header_style="bold", show_lines=True)
    table.add_column("scenario")
    table.add_column("fault")
    for name in INVARIANTS:
        table.add_column(name)
    table.add_column("p99 checkout")
    style = {"PASS": "green", "FAIL": "bold red", "SKIP": "dim"}
    for outcome in outcomes:
        cells = [f"[{style[c.verdict]}]{c.verdict}[/] {_escape(c.detail)}" for c in outcome.checks]
        if outcome.skipped is not None:
            cells = [f"[dim]SKIP[/] {_escape(outcome.skipped)}", *["[dim]SKIP[/]"] * 5]
        latency = "-" if outcome.latency is None else str(outcome.latency)
        table.add_row(outcome.scenario, _escape(outcome.fault), *cells, latency)
    return table


def _escape(text: str) -> str:
    return escape(text)
