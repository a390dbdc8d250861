"""A shopper's whole journey through the web storefront, in Debian's headless Chromium.

Through the e2e system's gateway, exactly as a browser at http://localhost:8080 would: the
storefront (bff-web) serves the pages, identity's own page signs the shopper in, and the
order goes through the real checkout. A screenshot of each step is saved under the test's
tmp_path; any error on the way fails the test: a navigation answered with HTTP >= 400, a
console error or an uncaught script error, or an element marked as an error.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import sync_playwright

from .conftest import PASSWORD

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from playwright.sync_api import ConsoleMessage, Page, Response

    from souk.testing import SoukSystem

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, as CI installs it: never a browser Playwright downloads.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Marked as an error by the storefront (and by identity's sign-in page).
ERROR_MARKS = "[role=alert], .error"


def require_chromium() -> None:
    """Skip without Debian's Chromium; under CI=true its absence is a failure."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class Journey:
    """The browser tab, the errors seen so far, and a numbered screenshot per step."""

    def __init__(self, page: Page, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.errors: list[str] = []
        self.steps = 0
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"script error: {error}"))
        page.on("response", self._on_response)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} at {message.location.get('url')}")

    def _on_response(self, response: Response) -> None:
        if response.request.is_navigation_request() and response.status >= 400:
            self.errors.append(
                f"HTTP {response.status} on {response.request.method} {response.url}"
            )

    def step(self, name: str) -> None:
        """Check the page shows no error, then keep a screenshot of it."""
        self.page.wait_for_load_state("load")
        marked = self.page.locator(ERROR_MARKS)
        if marked.count():
            self.errors.append(f"error shown at {name}: {marked.first.inner_text()}")
        self.steps += 1
        path = self.shots / f"{self.steps:02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        assert not self.errors, f"at step {name}: {self.errors} (screenshots in {self.shots})"


@pytest.fixture
def journey(souk: SoukSystem, tmp_path: Path) -> Iterator[Journey]:
    require_chromium()
    shots = tmp_path / "storefront"
    shots.mkdir()
    print(f"storefront screenshots: {shots}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                base_url=souk.gateway_url, viewport={"width": 1280, "height": 900}
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            yield Journey(page, shots)
        finally:
            browser.close()


def test_a_shopper_browses_signs_up_buys_watches_the_order_and_signs_out(
    journey: Journey,
) -> None:
    page = journey.page
    page.goto("/")
    assert page.get_by_role("heading", name="Spices, tea and lanterns from the souk").is_visible()
    journey.step("front-page")

    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Lamps").click()
    page.wait_for_url(re.compile(r"category=lamps-lanterns"))
    assert page.get_by_role("link", name="Pierced brass lantern, large").is_visible()
    journey.step("category")

    page.get_by_role("searchbox", name="Search the souk").fill("glass lantern")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=glass"))
    journey.step("search")

    page.get_by_role("link", name="Coloured glass lantern").click()
    page.wait_for_url(re.compile(r"/products/"))
    product_url = page.url
    assert page.get_by_role("heading", name="Coloured glass lantern").is_visible()
    assert re.match(
        r"In stock: \d+ available|Only \d+ left", page.get_by_test_id("stock").inner_text()
    )
    journey.step("product")

    email = f"storefront-{uuid.uuid4().hex[:10]}@example.com"
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    journey.step("sign-up")
    page.get_by_role("button", name="Open my account").click()

    # Identity's own sign-in page, through the same gateway.
    page.wait_for_url(re.compile(r"/oauth/authorize"))
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    journey.step("identity-sign-in")
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_url(re.compile(r"^[^?]*/(\?.*)?$"))
    assert page.get_by_text("Welcome! You are signed in.").is_visible()
    assert page.get_by_role("link", name="My orders").is_visible()
    journey.step("signed-in")

    page.goto(product_url)
    page.get_by_label("Quantity").fill("2")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url(re.compile(r"/cart$"))
    assert page.get_by_test_id("cart-count").inner_text() == "2"
    assert page.get_by_test_id("cart-total").inner_text() == "€98.00"
    journey.step("cart")

    page.get_by_role("button", name="Place order").click()
    page.wait_for_url(re.compile(r"/orders/[^/]+$"))
    order_url = page.url
    journey.step("order-placed")
    # The page's script polls the order and reloads it once the checkout is over.
    status = page.get_by_test_id("order-status")
    page.wait_for_function(
        "() => ['Confirmed', 'Rejected', 'Cancelled'].includes("
        "document.querySelector('[data-testid=order-status]').textContent.trim())",
        timeout=60_000,
    )
    assert status.inner_text() == "Confirmed"
    assert page.get_by_text("Your order is confirmed").is_visible()
    journey.step("order-confirmed")

    page.get_by_role("link", name="My orders").click()
    page.wait_for_url(re.compile(r"/orders$"))
    order_id = order_url.rsplit("/", 1)[1]
    assert page.get_by_role("link", name=order_id[:8]).is_visible()
    journey.step("order-history")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"^[^?]*/$"))
    # Not "signed out of this browser": identity revoked the grant.
    assert page.get_by_text("You are signed out.", exact=True).is_visible()
    assert page.get_by_role("link", name="Sign in").is_visible()
    journey.step("signed-out")
    # Signed out means the orders are out of reach again: back to identity's sign-in.
    page.goto(order_url)
    page.wait_for_url(re.compile(r"/oauth/authorize"))


def test_a_product_page_renders_saying_stock_is_unavailable_while_inventory_hangs(
    souk: SoukSystem, gateway: httpx.Client
) -> None:
    found = gateway.get("/api/catalog/products", params={"q": "Coloured glass lantern"}).json()
    [lantern] = [p for p in found["items"] if p["name"] == "Coloured glass lantern"]
    frozen = [record.instance for record in souk.instances("inventory")]
    for instance in frozen:
        souk.kill(instance, signal.SIGSTOP)
    try:
        page = gateway.get(f"/products/{lantern['id']}", headers={"Accept": "text/html"})
    finally:
        for instance in frozen:
            souk.kill(instance, signal.SIGCONT)
    assert page.status_code == 200
    assert "Coloured glass lantern" in page.text
    assert "Stock unavailable" in page.text
    assert "Add to cart" in page.text
    # Thawed, inventory answers again and the page shows the stock.
    again = gateway.get(f"/products/{lantern['id']}", headers={"Accept": "text/html"})
    assert re.search(r"In stock: \d+ available|Only \d+ left", again.text)
