"""The console in Debian's headless Chromium: a shopper's order, found as one trace.

A shopper signs up and buys in the storefront; the operator then searches the console for
the order, opens its trace (a waterfall of at least eight services' spans) and one span's
logs. A screenshot of each step is saved under the test's tmp_path.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import sync_playwright

from .conftest import PASSWORD
from .test_storefront import CHROMIUM, CHROMIUM_ARGS, Journey, check_out, require_chromium

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from souk.testing import SoukSystem

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser_journey(souk: SoukSystem, tmp_path: Path) -> Iterator[Journey]:
    require_chromium()
    shots = tmp_path / "console"
    shots.mkdir()
    print(f"console screenshots: {shots}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # bypass_csp: the checkout's steps run axe-core, injected as an inline script,
            # which the shop's CSP forbids (as in test_storefront's journeys).
            context = browser.new_context(
                base_url=souk.gateway_url, viewport={"width": 1440, "height": 900}, bypass_csp=True
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield Journey(page, shots)
        finally:
            browser.close()


def _buy_one_lantern(journey: Journey) -> str:
    """Sign up in the storefront, buy one lantern, wait for the confirmation; the order id."""
    page = journey.page
    page.goto("/")
    page.get_by_role("link", name="Sign up").click()
    email = f"console-{uuid.uuid4().hex[:10]}@example.com"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    # Sign-up signs the new customer in at once (the storefront's own flow, issue 18).
    page.get_by_role("button", name="Open my account").click()
    page.wait_for_url(re.compile(r"^[^?]*/(\?.*)?$"))
    page.get_by_role("searchbox", name="Search the souk").fill("glass lantern")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name="Coloured glass lantern").click()
    page.wait_for_url(re.compile(r"/products/"))
    # Add to cart keeps the shopper on the page; the cart badge says when it is in.
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=cart-count]').textContent.trim() === '1'"
    )
    page.get_by_role("link", name="Cart,").click()
    page.wait_for_url(re.compile(r"/cart$"))
    # Delivery, review, Place order: the storefront's checkout (test_storefront.check_out).
    check_out(journey, card="Test card — accepted", option="standard", prefix="shop-")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=order-status]').textContent.trim()"
        " === 'Confirmed'",
        timeout=60_000,
    )
    journey.step("shop-order-confirmed")
    return page.url.rsplit("/", 1)[1]


def test_an_order_placed_in_the_shop_is_one_trace_in_the_console(
    souk: SoukSystem, browser_journey: Journey
) -> None:
    journey = browser_journey
    page = journey.page
    order_id = _buy_one_lantern(journey)
    console = souk.url("console")

    # The spans reach the console within a second or two: search until the checkout is there.
    page.goto(f"{console}/traces?q={order_id}")
    for _ in range(30):
        if page.locator("table.traces a").count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    journey.step("console-search")
    rows = page.locator("table.traces tbody tr")
    widest = max(
        range(rows.count()), key=lambda i: int(rows.nth(i).locator("td").nth(2).inner_text())
    )
    rows.nth(widest).locator("a").click()
    page.wait_for_url(re.compile(r"/traces/[0-9a-f]{32}$"))
    services = set(page.locator("tr.span").evaluate_all("rows => rows.map(r => r.dataset.service)"))
    assert len(services) >= 8, services
    assert {"gateway", "bff-web", "orders", "inventory", "billing"} <= services
    journey.step("console-waterfall")

    # A server span of orders: its attributes and the access log line it wrote.
    page.locator('tr.span[data-service="orders"] a', has_text="POST").first.click()
    page.wait_for_url(re.compile(r"\?span=[0-9a-f]{16}$"))
    assert page.get_by_role("heading", name="Logs of this span").is_visible()
    assert page.locator("table.attributes").get_by_text("http.route").is_visible()
    assert page.locator("table.logs tr.log").count() >= 1
    journey.step("console-span-logs")

    page.goto(f"{console}/")
    orders = page.locator('tr[data-instance="orders-1"]')
    assert orders.is_visible()
    assert "mesh off" in orders.inner_text()  # the default topology: no sidecars
    journey.step("console-instances")

    # Billing called the payment provider through its resilience pipeline: the breaker and
    # the bulkhead of that dependency, as billing-1's /metrics said at the last scrape.
    page.get_by_role("link", name="Breakers").click()
    provider = page.locator('tr[data-instance="billing-1"][data-dependency="payment-primary"]')
    for _ in range(20):  # the console scrapes every few seconds
        if provider.count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    assert provider.locator('[data-field="breaker"]').inner_text() == "closed"
    assert re.fullmatch(r"\d+/\d+", provider.locator('[data-field="occupancy"]').inner_text())
    journey.step("console-breakers")

    # The live tail: a request to the catalog shows up in the open page without a reload.
    page.goto(f"{console}/logs?tail=true&service=catalog")
    rows = page.locator("#log-lines tr.log")
    before = rows.count()
    marker = f"tail-{uuid.uuid4().hex[:8]}"
    page.request.get(f"{souk.gateway_url}/api/catalog/products/{marker}")  # a 404, logged
    page.wait_for_function(
        "marker => [...document.querySelectorAll('#log-lines tr.log')]"
        ".some(row => row.textContent.includes(marker))",
        arg=marker,
        timeout=30_000,
    )
    assert rows.count() > before
    journey.step("console-live-tail")
