"""The console of a running Souk: one checkout is one trace through every service, and the
logs of every process are in it."""

from __future__ import annotations

import re
import uuid

import httpx

from .test_checkout import _in_stock, _settled

SERVICE_OF_ROW = re.compile(r'<tr class="span[^"]*" data-service="([^"]+)"')


def _services_in_trace(console: str, trace_id: str) -> set[str]:
    page = httpx.get(f"{console}/traces/{trace_id}", timeout=5).text
    return set(SERVICE_OF_ROW.findall(page))


def test_one_checkout_is_one_trace_through_at_least_eight_services(souk, shopper):
    trace_id = uuid.uuid4().hex
    [spice] = _in_stock(souk, shopper, "spices", 1)
    placed = shopper.post(
        "/api/orders",
        headers={
            "Idempotency-Key": str(uuid.uuid4()),
            "traceparent": f"00-{trace_id}-{'ab' * 8}-01",
        },
        json={
            "items": [{"product_id": spice["id"], "quantity": 1}],
            "payment": {"card_token": "tok_ok"},
        },
    )
    assert placed.status_code == 201, placed.text
    order = _settled(souk, shopper, placed.json()["id"])
    assert order["status"] == "CONFIRMED", order
    console = souk.url("console")

    expected = {"gateway", "orders", "catalog", "inventory", "billing", "payment-primary"}
    expected |= {"notifications", "order-history"}

    def complete() -> set[str] | None:
        found = _services_in_trace(console, trace_id)
        return found if expected <= found else None

    services = souk.wait_until(complete, timeout=30, interval=0.5, message="the whole trace")
    assert len(services) >= 8
    page = httpx.get(f"{console}/traces/{trace_id}", timeout=5).text
    # The saga's steps over the bus are producer and consumer spans of the same trace.
    assert "producer" in page
    assert "consumer" in page
    # The search finds the trace by the order id (the saga's messages carry it as their key).
    found = httpx.get(f"{console}/traces", params={"q": order["id"]}, timeout=5).text
    assert trace_id in found


def test_the_logs_of_every_process_reach_the_console_with_their_trace(souk, gateway):
    trace_id = uuid.uuid4().hex
    request_id = f"console-{uuid.uuid4().hex[:10]}"
    answer = gateway.get(
        "/api/catalog/products",
        headers={"traceparent": f"00-{trace_id}-{'cd' * 8}-01", "x-request-id": request_id},
    )
    assert answer.status_code == 200
    console = souk.url("console")

    def logged() -> str | None:
        page = httpx.get(f"{console}/logs", params={"trace_id": trace_id}, timeout=5).text
        return page if "catalog-" in page and "gateway-1" in page else None

    page = souk.wait_until(logged, timeout=20, interval=0.5, message="the request's log lines")
    assert request_id in page
    instances = httpx.get(f"{console}/", timeout=5).text
    assert all(
        f'data-instance="{record.instance}"' in instances for record in souk.state().instances
    )
