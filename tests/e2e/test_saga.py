"""Kill an instance of orders, inventory or billing in the middle of a burst of 200 orders:
once it is back, every order is settled, and what inventory and billing hold agrees with
the orders, asked of each service.

One system of the test's own (SQLite, the embedded broker: `souk up`'s defaults), so the
kills touch no other test and the stock each burst empties is only this module's. Each test
takes four products nobody has ordered yet, 25 units each, for 200 orders of one unit: some
are confirmed, some rejected for want of stock, one in ten declined, one in ten cancelled
right after placing.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from souk.testing import SoukSystem, client_token, customer_token

from .conftest import PASSWORD, bearer, default_topology

if TYPE_CHECKING:
    from collections.abc import Iterator

BURST = 200
CUSTOMERS = 4
PRODUCTS = 4
KILL_AFTER = 60
"""Orders placed before the kill; the rest, and the checkouts of most, come after it."""
SETTLE_TIMEOUT = 90.0


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoukSystem]:
    with SoukSystem(
        default_topology(), tmp_path_factory.mktemp("souk-saga"), ready_timeout=60
    ) as system:
        yield system


@pytest.fixture(scope="module")
def reader(system: SoukSystem) -> Iterator[httpx.Client]:
    """A client with a token that may read stock and payments straight from the services (as
    the operator's tools do: over TCP, or with the mesh on over their Unix sockets)."""
    # The system's own client: it reaches an instance on its Unix socket with the mesh on.
    with system.http(timeout=10.0) as client:
        token = client_token(
            system.url("identity"),
            *system.client_credentials("orders"),
            ["stock:read", "payments:read"],
            client=client,
        )
        client.headers.update(bearer(token))
        yield client


@pytest.fixture(scope="module")
def shoppers(system: SoukSystem) -> Iterator[list[httpx.Client]]:
    clients = []
    for _ in range(CUSTOMERS):
        email = f"saga-{uuid.uuid4().hex[:12]}@example.com"
        token = customer_token(system.gateway_url, email, PASSWORD)
        clients.append(
            httpx.Client(base_url=system.gateway_url, timeout=15.0, headers=bearer(token))
        )
    yield clients
    for client in clients:
        client.close()


def _untouched_products(system: SoukSystem, reader: httpx.Client) -> list[dict[str, Any]]:
    """Products nobody has ordered in this system yet: all their demo stock, 25, available."""
    products = httpx.get(
        f"{system.gateway_url}/api/catalog/products", params={"page_size": 100}, timeout=10
    ).json()["items"]
    untouched = []
    for product in products:
        level = _stock(system, reader, product["sku"])
        if level["on_hand"] == level["available"] == 25:
            untouched.append(product)
        if len(untouched) == PRODUCTS:
            return untouched
    raise AssertionError("not enough products left with all their stock")


def _stock(system: SoukSystem, reader: httpx.Client, sku: str) -> dict[str, Any]:
    level: dict[str, Any] = _answer(
        lambda: reader.get(f"{_any_url(system, 'inventory')}/stock/{sku}")
    )
    return level


def _payments(system: SoukSystem, reader: httpx.Client, order_id: str) -> list[dict[str, Any]]:
    url = f"{_any_url(system, 'billing')}/payments"
    payments: list[dict[str, Any]] = _answer(lambda: reader.get(url, params={"order_id": order_id}))
    return payments


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _any_url(system: SoukSystem, service: str) -> str:
    """The URL of an instance of ``service`` that has a process now."""
    return next((i.url for i in system.instances(service) if i.pid), system.url(service))


def _answer(call: Any, attempts: int = 50) -> Any:
    """The JSON of a 200 answer, asking again (for a while) while the service is restarting."""
    for _ in range(attempts):
        try:
            response = call()
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            return response.json()
        if response.status_code < 500:
            raise AssertionError(f"{response.status_code}: {response.text}")
        time.sleep(0.2)
    raise AssertionError("no answer while the service was back")


def _send(request: Any) -> httpx.Response:
    """A request through the gateway, sent again (it is idempotent) while the service it
    reaches is down or restarting."""
    deadline = time.monotonic() + 60
    while True:
        response: httpx.Response | None
        try:
            response = request()
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code < 500:
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer from the gateway: {response and response.text}")
        time.sleep(0.1)


def _burst(
    system: SoukSystem,
    shoppers: list[httpx.Client],
    products: list[dict[str, Any]],
    victim: str,
) -> tuple[list[tuple[httpx.Client, str]], datetime]:
    """Place BURST orders from several threads; SIGKILL ``victim`` once KILL_AFTER are
    placed, and answer the orders and when the kill was.

    Each order: one unit of one of the products; one in ten with a declined card, one in ten
    cancelled as soon as it is placed."""
    placed = 0
    enough = threading.Event()
    lock = threading.Lock()

    def order(n: int) -> tuple[httpx.Client, str]:
        nonlocal placed
        shopper = shoppers[n % len(shoppers)]
        key = str(uuid.uuid4())
        body = {
            "items": [{"product_id": products[n % len(products)]["id"], "quantity": 1}],
            "payment": {"card_token": "tok_decline" if n % 10 == 7 else "tok_ok"},
        }
        response = _send(
            lambda: shopper.post("/api/orders", json=body, headers={"Idempotency-Key": key})
        )
        assert response.status_code in {200, 201}, response.text
        order_id: str = response.json()["id"]
        if n % 10 == 3:
            cancelled = _send(lambda: shopper.post(f"/api/orders/{order_id}/cancel"))
            # 409: the checkout rejected it first.
            assert cancelled.status_code in {200, 409}, cancelled.text
        with lock:
            placed += 1
            if placed >= KILL_AFTER:
                enough.set()
        return shopper, order_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(order, n) for n in range(BURST)]
        assert enough.wait(60), "the burst did not get going"
        killed_at = datetime.now(UTC)
        killed = system.kill(victim, signal.SIGKILL)
        orders = [future.result() for future in futures]
    system.wait_until(
        lambda: (
            system.instance(victim).pid not in {None, killed}
            and system.instance(victim).state == "ready"
        ),
        timeout=60,
        message=f"{victim} restarted",
    )
    return orders, killed_at


def _settled(system: SoukSystem, orders: list[tuple[httpx.Client, str]]) -> list[dict[str, Any]]:
    """Every order once its saga has nothing left to do (polled, all within SETTLE_TIMEOUT)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(orders):
        for shopper, order_id in orders:
            if order_id in done:
                continue
            response = _send(lambda s=shopper, o=order_id: s.get(f"/api/orders/{o}"))
            order = response.json()
            if order["saga"]["settled"]:
                done[order_id] = order
        if len(done) < len(orders):
            assert time.monotonic() < deadline, (
                f"{len(orders) - len(done)} orders unsettled after {SETTLE_TIMEOUT:g} s"
            )
            time.sleep(0.5)
    return [done[order_id] for _, order_id in orders]


def _check_agreement(
    system: SoukSystem,
    reader: httpx.Client,
    products: list[dict[str, Any]],
    orders: list[dict[str, Any]],
) -> Counter[str]:
    """Stock and payments, asked of inventory and billing, agree with the settled orders."""
    committed: Counter[str] = Counter()
    for order in orders:
        steps = {(s["step"], s["outcome"]) for s in order["checkout_steps"]}
        was_committed = ("commit-stock", "done") in steps
        payments = _payments(system, reader, order["id"])
        taking = [p for p in payments if p["status"] != "DECLINED"]
        assert len(taking) <= 1, f"order {order['id']} has two payments: {payments}"
        statuses = {p["status"] for p in taking}
        if order["status"] == "CONFIRMED":
            assert was_committed, order
            assert statuses == {"CAPTURED"}, (order, payments)
            assert taking[0]["amount"] == order["total"]
        elif was_committed:  # confirmed, then cancelled: refunded, the goods have left
            assert order["status"] == "CANCELLED", order
            assert statuses == {"REFUNDED"}, (order, payments)
        else:
            assert statuses <= {"VOIDED", "REFUNDED"}, (order, payments)
        if was_committed:
            committed.update(line["sku"] for line in order["items"])
    for product in products:
        level = _stock(system, reader, product["sku"])
        assert level["reserved"] == 0, f"stock held for settled orders: {level}"
        assert level["on_hand"] == 25 - committed[product["sku"]], level
    return Counter(order["status"] for order in orders)


@pytest.mark.parametrize("victim", ["orders-1", "inventory-1", "billing-1"])
def test_killing_a_service_mid_burst_leaves_stock_and_payments_agreeing_with_the_orders(
    system: SoukSystem,
    reader: httpx.Client,
    shoppers: list[httpx.Client],
    victim: str,
) -> None:
    products = _untouched_products(system, reader)
    restarts = system.instance(victim).restarts

    placed, killed_at = _burst(system, shoppers, products, victim)
    orders = _settled(system, placed)

    assert system.instance(victim).restarts == restarts + 1
    # The kill came in the middle of checkouts: orders placed before it settled after it.
    assert any(
        datetime.fromisoformat(o["created_at"])
        < killed_at
        < datetime.fromisoformat(o["updated_at"])
        for o in orders
    )
    assert len({order["id"] for order in orders}) == BURST
    statuses = _check_agreement(system, reader, products, orders)
    # The burst went every way a checkout can: more orders than stock, declines, cancels.
    assert statuses["CONFIRMED"] > 0
    assert statuses["REJECTED"] > 0
    assert statuses["CANCELLED"] > 0
    assert sum(statuses.values()) == BURST
