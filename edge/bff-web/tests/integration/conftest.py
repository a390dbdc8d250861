"""bff-web in-process, against fakes of its upstreams that listen on real ports.

Catalog, orders and identity are small aiohttp servers and inventory a gRPC server, each
on a free port of 127.0.0.1, so the storefront's real clients (timeouts, round robin,
HTTP Basic, gRPC deadlines) are what is tested. ``Upstreams`` holds their state and the
switches that make one slow or broken.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import grpc
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bff_web.app import create_app
from bff_web.settings import BffWebSettings
from contracts.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from souk.testing import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from pathlib import Path

PUBLIC_URL = "http://shop.test"
CLIENT_SECRET = "bff-web-test-secret"  # noqa: S105 - a fake identity's client
PASSWORD = "sesame-opens-the-souk"  # noqa: S105 - a fake customer's

SAFFRON = {
    "id": "p-saffron",
    "sku": "SPC-SAFFRON-2G",
    "name": "Taliouine saffron threads, 2 g",
    "description": "Hand-picked in the Anti-Atlas.",
    "category": "spices",
    "price": {"amount": 1490, "currency": "EUR"},
    "version": 1,
}
CUMIN = {
    **SAFFRON,
    "id": "p-cumin",
    "sku": "SPC-CUMIN-100G",
    "name": "Cumin seeds, 100 g",
    "price": {"amount": 390, "currency": "EUR"},
}
TEAPOT = {
    **SAFFRON,
    "id": "p-teapot",
    "sku": "TEA-POT-BRASS",
    "name": "Brass teapot",
    "category": "tea-coffee",
    "price": {"amount": 4200, "currency": "EUR"},
}
PRODUCTS = [SAFFRON, CUMIN, TEAPOT]


@dataclass
class Upstreams:
    """The fakes' state, and switches to break them."""

    stock: dict[str, int] = field(
        # Cumin is not stocked at all: sold out.
        default_factory=lambda: {"SPC-SAFFRON-2G": 12, "TEA-POT-BRASS": 3}
    )
    inventory_delay: float = 0.0
    catalog_down: bool = False
    product_delay: float = 0.0
    categories_down: bool = False
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    """code -> (PKCE challenge, customer)"""
    access_tokens: dict[str, str] = field(default_factory=dict)
    """access token -> customer"""
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    token_lifetime: int = 600
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    placed: list[dict[str, Any]] = field(default_factory=list)
    """every POST /orders: its key, customer and body"""
    refuse_orders: str | None = None
    """a detail: orders answers 422 with it"""
    accounts: dict[str, str] = field(default_factory=dict)
    listings: list[dict[str, str]] = field(default_factory=list)
    """every GET /products: its query"""
    authorize_delay: float = 0.0
    authorize_refuses: bool = False
    """identity's sign-in form answers 401 to every password"""
    stock_tokens: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    delivery_prices: dict[str, int] = field(default_factory=lambda: {"standard": 0, "express": 990})
    """orders' price of each delivery option, in euro cents"""

    def authorize(self, authorize_url: str, customer: str = "amina") -> tuple[str, str]:
        """What identity's sign-in page does for ``customer``: a code for the callback.

        Returns (code, state) as identity's redirect to the callback would carry them.
        """
        query = parse_qs(urlsplit(authorize_url).query)
        assert query["client_id"] == ["bff-web"]
        assert query["code_challenge_method"] == ["S256"]
        assert query["redirect_uri"] == [f"{PUBLIC_URL}/auth/callback"]
        code = uuid.uuid4().hex
        self.codes[code] = (query["code_challenge"][0], customer)
        return code, query["state"][0]


def _client_authenticated(request: web.Request) -> bool:
    expected = base64.b64encode(f"bff-web:{CLIENT_SECRET}".encode()).decode()
    return request.headers.get("Authorization") == f"Basic {expected}"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _tokens(state: Upstreams, customer: str) -> dict[str, Any]:
    access, refresh = f"at-{uuid.uuid4().hex}", f"rt-{uuid.uuid4().hex}"
    state.access_tokens[access] = customer
    state.refresh_tokens[refresh] = customer
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": state.token_lifetime,
        "refresh_token": refresh,
    }


def identity_app(state: Upstreams) -> web.Application:
    def client_credentials(_: Any) -> web.Response:
        access = f"cc-{uuid.uuid4().hex}"
        state.stock_tokens.append(access)
        return web.json_response(
            {"access_token": access, "token_type": "Bearer", "expires_in": 600}
        )

    def authorization_code(form: Any) -> web.Response:
        entry = state.codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", ""))
        if entry is None or _challenge(verifier) != entry[0]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(_tokens(state, entry[1]))

    def refresh(form: Any) -> web.Response:
        customer = state.refresh_tokens.pop(str(form.get("refresh_token")), None)
        if customer is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(_tokens(state, customer))

    grants = {
        "client_credentials": client_credentials,
        "authorization_code": authorization_code,
        "refresh_token": refresh,
    }

    async def token(request: web.Request) -> web.Response:
        if not _client_authenticated(request):
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = grants.get(str(form.get("grant_type")))
        if grant is None:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        return grant(form)

    async def revoke(request: web.Request) -> web.Response:
        if not _client_authenticated(request):
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        refresh = str(form.get("token"))
        state.revoked.append(refresh)
        customer = state.refresh_tokens.pop(refresh, None)
        state.access_tokens = {a: c for a, c in state.access_tokens.items() if c != customer}
        return web.Response(status=200)

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        if len(body["password"]) < 10:
            return web.json_response(
                {
                    "type": "https://souk.dev/problems/weak-password",
                    "status": 422,
                    "detail": "at least 10 characters",
                },
                status=422,
            )
        if body["email"] in state.accounts:
            return web.json_response(
                {"type": "https://souk.dev/problems/email-taken", "status": 409}, status=409
            )
        state.accounts[body["email"]] = body["password"]
        return web.json_response({"id": uuid.uuid4().hex, "email": body["email"]}, status=201)

    async def authorize(request: web.Request) -> web.Response:
        """Identity's sign-in form, posted: a code for a known account's password."""
        form = await request.post()
        await asyncio.sleep(state.authorize_delay)
        email = str(form.get("email"))
        if state.authorize_refuses or state.accounts.get(email) != form.get("password"):
            return web.Response(status=401, text="wrong email or password")
        assert form.get("redirect_uri") == f"{PUBLIC_URL}/auth/callback"
        code = uuid.uuid4().hex
        state.codes[code] = (str(form.get("code_challenge")), email)
        query = urlencode({"code": code, "state": str(form.get("state")), "iss": PUBLIC_URL})
        raise web.HTTPFound(f"{form.get('redirect_uri')}?{query}")

    app = web.Application()
    app.router.add_post("/oauth/authorize", authorize)
    app.router.add_post("/oauth/token", token)
    app.router.add_post("/oauth/revoke", revoke)
    app.router.add_post("/users", register)
    return app


def catalog_app(state: Upstreams) -> web.Application:
    def down() -> web.Response | None:
        if state.catalog_down:
            return web.json_response({"status": 503}, status=503)
        return None

    async def categories(_: web.Request) -> web.Response:
        if state.categories_down:
            return web.json_response({"status": 503}, status=503)
        return down() or web.json_response(
            [
                {"slug": "spices", "name": "Spices", "product_count": 2},
                {"slug": "tea-coffee", "name": "Tea & coffee", "product_count": 1},
            ]
        )

    async def products(request: web.Request) -> web.Response:
        state.listings.append(dict(request.query))
        category, q = request.query.get("category"), request.query.get("q", "").lower()
        items = [
            p
            for p in PRODUCTS
            if (not category or p["category"] == category) and q in str(p["name"]).lower()
        ]
        body = {"items": items, "page": 1, "page_size": 12, "total": len(items), "pages": 1}
        return down() or web.json_response(body)

    async def product(request: web.Request) -> web.Response:
        await asyncio.sleep(state.product_delay)
        found = [p for p in PRODUCTS if p["id"] == request.match_info["id"]]
        if not found:
            return down() or web.json_response({"status": 404}, status=404)
        return down() or web.json_response(found[0])

    app = web.Application()
    app.router.add_get("/categories", categories)
    app.router.add_get("/products", products)
    app.router.add_get("/products/{id}", product)
    return app


def orders_app(state: Upstreams) -> web.Application:
    def customer(request: web.Request) -> str | None:
        match = re.fullmatch(r"Bearer (\S+)", request.headers.get("Authorization", ""))
        return state.access_tokens.get(match.group(1)) if match else None

    async def place(request: web.Request) -> web.Response:
        who = customer(request)
        if who is None:
            return web.json_response({"status": 401}, status=401)
        key, body = request.headers.get("Idempotency-Key"), await request.json()
        state.placed.append({"key": key, "customer": who, "body": body})
        if state.refuse_orders is not None:
            problem = {"status": 422, "detail": state.refuse_orders}
            return web.json_response(problem, status=422)
        replay = next((o for o in state.orders.values() if o["key"] == key), None)
        if replay is not None:
            return web.json_response(replay["public"], status=200)
        order_id = uuid.uuid4().hex
        public = {
            "id": order_id,
            "customer_id": who,
            "status": "PENDING",
            "items": [
                {"product_id": i["product_id"], "name": None, "quantity": i["quantity"]}
                for i in body["items"]
            ],
            "total": None,
            "reason": None,
            "created_at": datetime.now(UTC).isoformat(),
        }
        if (delivery := body.get("delivery")) is not None:  # priced as orders 1.2 does
            price = {"amount": state.delivery_prices[delivery["option"]], "currency": "EUR"}
            public["delivery"] = {**delivery, "price": price}
        state.orders[order_id] = {"key": key, "customer": who, "public": public}
        return web.json_response(public, status=201)

    async def get(request: web.Request) -> web.Response:
        who = customer(request)
        if who is None:
            return web.json_response({"status": 401}, status=401)
        order = state.orders.get(request.match_info["id"])
        if order is None or order["customer"] != who:
            return web.json_response({"status": 404}, status=404)
        return web.json_response(order["public"])

    async def listing(request: web.Request) -> web.Response:
        who = customer(request)
        if who is None:
            return web.json_response({"status": 401}, status=401)
        mine = [o["public"] for o in state.orders.values() if o["customer"] == who]
        return web.json_response(
            {"items": mine, "page": 1, "page_size": 10, "total": len(mine), "pages": 1}
        )

    async def delivery_options(request: web.Request) -> web.Response:
        if customer(request) is None:
            return web.json_response({"status": 401}, status=401)
        options = [
            {"option": option, "price": {"amount": amount, "currency": "EUR"}}
            for option, amount in state.delivery_prices.items()
        ]
        return web.json_response({"options": options})

    app = web.Application()
    app.router.add_post("/orders", place)
    app.router.add_get("/orders", listing)
    app.router.add_get("/orders/delivery-options", delivery_options)
    app.router.add_get("/orders/{id}", get)
    return app


class FakeInventory(inventory_pb2_grpc.InventoryServicer):
    def __init__(self, state: Upstreams) -> None:
        self.state = state

    async def GetStock(  # noqa: N802 - the proto's name
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inventory_pb2.StockLevel:
        metadata = dict(context.invocation_metadata() or ())
        if metadata.get("authorization", "").removeprefix("Bearer ") not in self.state.stock_tokens:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "no token")
        await asyncio.sleep(self.state.inventory_delay)
        if request.sku not in self.state.stock:
            await context.abort(grpc.StatusCode.NOT_FOUND, request.sku)
        units = self.state.stock[request.sku]
        return inventory_pb2.StockLevel(sku=request.sku, on_hand=units, available=units)


@pytest.fixture
async def upstreams() -> AsyncIterator[Upstreams]:
    """The fakes of catalog, orders, identity (HTTP) and inventory (gRPC), listening."""
    state = Upstreams()
    servers = {
        name: TestServer(make(state), host="127.0.0.1")
        for name, make in (
            ("catalog", catalog_app),
            ("orders", orders_app),
            ("identity", identity_app),
        )
    }
    for name, server in servers.items():
        await server.start_server()
        state.urls[name] = str(server.make_url("")).rstrip("/")
    grpc_server = grpc.aio.server()
    inventory_pb2_grpc.add_InventoryServicer_to_server(FakeInventory(state), grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    state.urls["inventory"] = f"grpc://127.0.0.1:{port}"
    yield state
    await grpc_server.stop(None)
    for server in servers.values():
        await server.close()


@pytest.fixture
async def storefront_factory(
    tmp_path: Path, upstreams: Upstreams
) -> AsyncIterator[Callable[..., Any]]:
    """Starts bff-web on these upstreams (some overridden) and gives an in-process browser."""
    stack: list[Any] = []

    async def start(base_url: str = PUBLIC_URL, **settings: Any) -> httpx.AsyncClient:
        urls = {**upstreams.urls, **settings.pop("urls", {})}
        app = create_app(
            BffWebSettings(
                data_dir=tmp_path,
                instance="bff-web-test",
                public_url=PUBLIC_URL,
                client_secret=CLIENT_SECRET,
                upstreams={name: [url] for name, url in urls.items()},
                shutdown_timeout=1,
                **settings,
            )
        )
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        stack.append((lifespan, client))
        return client

    yield start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def browser(storefront_factory: Callable[..., Any]) -> httpx.AsyncClient:
    """A browser on the storefront, with its cookie jar."""
    client: httpx.AsyncClient = await storefront_factory()
    return client


def unused_grpc_url() -> str:
    """A gRPC address where nothing listens: an inventory that is down."""
    return f"grpc://127.0.0.1:{free_port()}"


def csrf_token_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def sign_in(
    browser: httpx.AsyncClient, upstreams: Upstreams, customer: str = "amina"
) -> None:
    """The whole code flow: sign-in redirect, identity's page (faked), the callback."""
    started = await browser.get("/auth/sign-in")
    assert started.status_code == 303
    code, state = upstreams.authorize(started.headers["location"], customer)
    back = await browser.get(
        "/auth/callback", params={"code": code, "state": state, "iss": PUBLIC_URL}
    )
    assert back.status_code == 303, back.text
