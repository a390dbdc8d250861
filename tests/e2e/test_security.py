"""Security at the public edge (docs/security.md): each test is a row of its table."""

from __future__ import annotations

import base64
import json
import re
import socket
import stat
import uuid

import httpx
import pytest

from souk.testing import client_token

from .conftest import PASSWORD, cli_client, new_shopper

# What every installation shipped with before secrets were made per installation.
OLD_DEVELOPMENT_SECRETS = [
    ("souk-cli", "souk-cli-development-secret"),
    ("bff-web", "bff-web-development-secret"),
    ("orders", "orders-development-secret"),
]


def _client_credentials(client: httpx.Client, credentials: tuple[str, str]) -> httpx.Response:
    return client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=credentials)


def test_the_installation_made_its_own_secrets_readable_by_its_owner_only(souk):
    path = souk.data_dir / "secrets.json"

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = json.loads(path.read_text())
    assert set(made) == {"client:souk-cli", "client:bff-web", "client:orders"}
    assert all(len(secret) >= 32 for secret in made.values())
    assert len(set(made.values())) == 3


@pytest.mark.parametrize("credentials", OLD_DEVELOPMENT_SECRETS, ids=lambda c: str(c[0]))
def test_the_old_development_secrets_open_nothing(gateway, credentials):
    response = _client_credentials(gateway, credentials)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("client_id", ["orders", "bff-web"])
def test_a_services_own_secret_buys_no_token_through_the_gateway(souk, gateway, client_id):
    credentials = souk.client_credentials(client_id)

    outside = _client_credentials(gateway, credentials)
    inside = httpx.post(
        f"{souk.url('identity')}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=credentials,
        timeout=10,
    )

    assert outside.status_code == 400, outside.text
    assert outside.json()["error"] == "unauthorized_client"
    assert "access_token" not in outside.json()
    # The service itself, calling identity directly, still gets its token.
    assert inside.status_code == 200, inside.text


def test_a_script_still_gets_its_token_through_the_gateway(souk, gateway):
    response = _client_credentials(gateway, cli_client(souk))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/orders", "/api/notifications", "/api/mobile/cart"])
def test_a_clients_own_token_is_no_customer_on_customer_routes(souk, gateway, path):
    token = client_token(souk.gateway_url, *cli_client(souk), ["orders:read"])

    response = gateway.get(path, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403, response.text
    assert response.json()["type"] == "https://souk.dev/problems/customer-required"


def test_an_order_answers_with_its_public_location(souk, shopper, gateway):
    product = gateway.get("/api/catalog/products", params={"page_size": 1}).json()["items"][0]
    body = {
        "items": [{"product_id": product["id"], "quantity": 1}],
        "payment": {"card_token": "tok_ok"},
    }

    placed = shopper.post("/api/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})

    assert placed.status_code == 201, placed.text
    assert placed.headers["location"] == f"/api/orders/{placed.json()['id']}"


@pytest.mark.parametrize("path", ["/api/mobile/cart/", "/api/catalog/products/"])
def test_a_trailing_slash_never_redirects_to_an_instances_own_address(shopper, path):
    response = shopper.get(path, follow_redirects=False)

    assert response.status_code == 404, response.text
    assert "location" not in response.headers


def test_a_problems_instance_is_the_public_path(gateway):
    response = gateway.get("/api/catalog/products/no-such-product")

    assert response.status_code == 404
    assert response.json()["instance"] == "/api/catalog/products/no-such-product"


def test_a_problems_instance_from_orders_is_the_public_path(shopper):
    # Orders serves /orders/<id>; the client asked for /api/orders/<id>.
    response = shopper.get("/api/orders/no-such-order")

    assert response.status_code == 404, response.text
    assert response.json()["instance"] == "/api/orders/no-such-order"


# -- what the review found right, kept: probes of the OWASP API Top 10 ----------------------


def _subject(client: httpx.Client) -> str:
    """The customer id a shopper's token names (its payload is not secret, only signed)."""
    payload = client.headers["authorization"].split()[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def _place(client: httpx.Client, product_id: str) -> httpx.Response:
    return client.post(
        "/api/orders",
        json={
            "items": [{"product_id": product_id, "quantity": 1}],
            "payment": {"card_token": "tok_ok"},
        },
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


@pytest.fixture
def victims_order(souk, shopper, gateway) -> dict[str, str]:
    """An order of the shopper's, their customer id, and a product in their mobile cart."""
    product = gateway.get("/api/catalog/products", params={"page_size": 1}).json()["items"][0]
    placed = _place(shopper, product["id"])
    assert placed.status_code == 201, placed.text
    cart = shopper.put(f"/api/mobile/cart/items/{product['id']}", json={"qty": 2})
    assert cart.status_code == 200, cart.text
    return {"order": placed.json()["id"], "customer": _subject(shopper), "product": product["id"]}


# Every route of the public API that names an object by id, as another customer calls it.
BOLA_ROUTES = [
    ("GET", "/api/orders/{order}"),
    ("POST", "/api/orders/{order}/cancel"),
    ("GET", "/api/order-history/customers/{customer}/orders"),
]


@pytest.mark.parametrize(("method", "template"), BOLA_ROUTES)
def test_no_customer_reaches_another_customers_objects_by_id(
    souk, shopper, victims_order, method, template
):
    path = template.format(**victims_order)

    with new_shopper(souk) as stranger:
        response = stranger.request(method, path)

    # Not a 403: that would tell the stranger the id exists.
    assert response.status_code == 404, response.text
    assert shopper.get(f"/api/orders/{victims_order['order']}").json()["status"] != "cancelled"


def test_no_customer_sees_or_changes_another_customers_lists_and_cart(souk, shopper, victims_order):
    with new_shopper(souk) as stranger:
        emptied = stranger.delete(f"/api/mobile/cart/items/{victims_order['product']}")
        seen = [
            stranger.get("/api/orders").text,
            stranger.get("/api/mobile/orders").text,
            stranger.get("/api/mobile/cart").text,
            stranger.get("/api/notifications").text,
            stranger.get("/api/mobile/home").text,
        ]

    assert emptied.status_code in {200, 204, 404}, emptied.text
    assert not any(victims_order["order"] in text for text in seen)
    # The stranger's DELETE acted on the stranger's own cart, not the shopper's.
    assert shopper.get("/api/mobile/cart").json()["items"][0]["qty"] == 2


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # An order's status, owner or version are the shop's to set, never the client's.
        ("/api/orders", {"status": "confirmed"}),
        ("/api/orders", {"customer_id": "someone-else"}),
        ("/api/orders", {"total": {"amount": 1, "currency": "EUR"}}),
        ("/api/mobile/cart/items/{product}", {"unit_price": 0}),
    ],
)
def test_a_field_the_client_may_not_set_is_refused_not_ignored(
    shopper, victims_order, gateway, path, body
):
    base = {
        "items": [{"product_id": victims_order["product"], "quantity": 1}],
        "payment": {"card_token": "tok_ok"},
    }
    if "cart" in path:
        response = shopper.put(path.format(**victims_order), json={"qty": 1, **body})
    else:
        response = shopper.post(
            path, json={**base, **body}, headers={"Idempotency-Key": str(uuid.uuid4())}
        )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_an_account_takes_no_field_beyond_its_address_and_password(gateway):
    email = f"mass-{uuid.uuid4().hex[:12]}@example.com"

    response = gateway.post(
        "/api/users", json={"email": email, "password": PASSWORD, "id": "admin", "role": "admin"}
    )

    assert response.status_code == 422, response.text


def test_an_oversized_body_is_a_413_before_any_service_reads_it(shopper):
    response = shopper.post(
        "/api/orders",
        content=b'{"items": "' + b"x" * 2_000_000 + b'"}',
        headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
    )

    assert response.status_code == 413, response.text
    assert response.json()["type"] == "https://souk.dev/problems/payload-too-large"


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_client_error_and_the_service_lives_on(shopper, depth):
    body = "[" * depth + "]" * depth

    response = shopper.post(
        "/api/orders",
        content=body,
        headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
    )

    assert 400 <= response.status_code < 500, response.text
    assert shopper.get("/api/orders").status_code == 200


def test_no_cross_origin_reads_by_default(gateway, shopper):
    preflight = gateway.options(
        "/api/orders",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    simple = shopper.get("/api/orders", headers={"Origin": "https://evil.example"})

    for response in (preflight, simple):
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers


def test_the_storefronts_forms_need_their_csrf_token_and_origin(souk):
    with httpx.Client(base_url=souk.gateway_url, timeout=10.0) as browser:
        # A product the shop can sell: a sold-out one's page has no "Add to cart" form.
        products = browser.get("/api/catalog/products", params={"page_size": 50}).json()["items"]
        for product in products:
            page = browser.get(f"/products/{product['id']}")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            if found:
                break
        assert found, f"no product page of {len(products)} has a form: {page.text[:300]}"
        token = found.group(1)
        form = {"product_id": product["id"]}
        without = browser.post("/cart/items", data=form)
        forged = browser.post("/cart/items", data={**form, "csrf_token": "forged"})
        foreign = browser.post(
            "/cart/items",
            data={**form, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        own = browser.post("/cart/items", data={**form, "csrf_token": token})

    assert (without.status_code, forged.status_code, foreign.status_code) == (403, 403, 403)
    assert own.status_code in {200, 303}, own.text


def test_the_session_cookie_is_httponly_samesite_and_site_wide(souk):
    response = httpx.get(souk.gateway_url + "/", timeout=10.0)

    [cookie] = [c for c in response.headers.get_list("set-cookie") if c.startswith("souk_session=")]
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")[1:]}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/"
    # Plain HTTP here; over TLS it is Secure too (edge/bff-web's test_sessions.py).
    assert "secure" not in attributes


@pytest.mark.parametrize(
    "path",
    [
        "/api/catalog/metrics",
        "/api/catalog//metrics",
        "/api/catalog/%2e%2e/metrics",
        "/api/catalog/x/%2E%2E/metrics",
        "/api/catalog/%2fmetrics",
        "/api/catalog/..%2fmetrics",
        "/api/catalog/%6detrics",
        "/api/catalog/internal/dead-letters",
        "/api/catalog/%69nternal/dead-letters",
        "/api/catalog/x/..%2F..%2Finternal/dead-letters",
        "/api/orders/..%2Fhealthz",
        "/api/catalog/openapi.json",
        "/api/catalog/docs",
        "/api/order-history/redoc",
        "/oauth/../.well-known/../internal/revocations",
        "/.well-known/%2e%2e/internal/revocations",
        "/internal/revocations",
    ],
)
def test_path_tricks_reach_no_internal_route(shopper, path):
    response = shopper.get(path)

    assert response.status_code in {400, 404}, f"{path}: {response.status_code} {response.text}"
    assert "http_requests_total" not in response.text
    assert "dead_letters" not in response.text
    assert '"grants"' not in response.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_gateways_own_operational_routes_answer_the_local_operator(souk, path):
    # The supervisor, the console and Prometheus read them from this host; from another
    # host they do not exist (edge/gateway/tests/test_routing.py proves the refusal).
    response = httpx.get(souk.gateway_url + path, timeout=10.0)

    assert response.status_code == 200


def _raw_exchange(souk, request: bytes) -> bytes:
    """Send bytes to the gateway as they are; everything it answers until it closes or idles."""
    host, port = "127.0.0.1", int(souk.gateway_url.rsplit(":", 1)[1])
    received = b""
    with socket.create_connection((host, port), timeout=5) as connection:
        connection.sendall(request)
        connection.settimeout(3)
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


SMUGGLED = b"GET /api/orders HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        # CL.TE: a front end reading Content-Length and a back end reading chunks disagree.
        b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
        # Two lengths: which one ends the body?
        b"Content-Length: 0\r\nContent-Length: %d\r\n",
        b"Content-Length: 0, %d\r\n",
        # An obfuscated Transfer-Encoding some servers ignore and others honour.
        b"Transfer-Encoding: xchunked\r\nContent-Length: %d\r\n",
    ],
    ids=["cl-te", "te-cl", "two-lengths", "listed-lengths", "odd-te"],
)
def test_ambiguous_framing_smuggles_no_second_request(souk, framing):
    body = b"0\r\n\r\n" + SMUGGLED
    if b"%d" in framing:
        framing = framing.replace(b"%d", str(len(body)).encode())
    request = b"POST /api/catalog/products HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n" + body

    answer = _raw_exchange(souk, request)

    # One answer, a refusal of the ambiguous request (uvicorn's plain-text 400, documented
    # in docs/security.md), and the connection closed: the request hidden in its body never
    # runs (it would be a 401 problem of the orders route).
    statuses = re.findall(rb"^HTTP/1\.1 (\d{3})", answer, flags=re.MULTILINE)
    assert statuses == [b"400"], answer[:500]
    assert b"connection: close" in answer.lower()
    assert b"unauthorized" not in answer
