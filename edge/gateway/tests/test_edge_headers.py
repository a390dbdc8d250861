from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from chassis.logs import configure_logging
from gateway.settings import Cors

STOREFRONT = "https://shop.souk.example"


async def test_forwarding_headers_only_the_gateway_sets_are_replaced_not_trusted(kit, upstreams):
    forged = {
        "x-forwarded-for": "10.0.0.1",
        "x-forwarded-host": "admin.internal",
        "x-forwarded-prefix": "/evil",
        "x-forwarded-port": "8443",
        "forwarded": "for=10.0.0.1;proto=https",
        "x-souk-instance": "orders-1",
    }
    async with kit.client(kit.settings(upstreams)) as client:
        seen = (await client.get("/api/echo/x", headers=forged)).json()["headers"]
    assert seen["x-forwarded-for"] == "203.0.113.7"
    assert seen["x-forwarded-host"] == "gateway"
    assert seen["x-forwarded-prefix"] == "/api/echo"
    assert "x-forwarded-port" not in seen
    assert "forwarded" not in seen
    assert "x-souk-instance" not in seen


async def test_a_malformed_request_id_is_replaced_by_one_of_the_gateways(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echo/x", headers={"x-request-id": "a b<script>"})
    seen = response.json()["headers"]["x-request-id"]
    assert seen != "a b<script>"
    assert seen == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/api/echo/x", "/api/nowhere", "/healthz"])
async def test_every_answer_carries_the_security_headers(kit, upstreams, path):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


async def test_strict_transport_security_is_sent_only_over_tls(kit, upstreams):
    settings = kit.settings(upstreams)
    async with kit.client(settings, base_url="https://gateway") as client:
        over_tls = await client.get("/api/echo/x")
    async with kit.client(settings) as client:
        plain = await client.get("/api/echo/x")
    assert over_tls.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in plain.headers


def cors_settings(kit, upstreams):
    return kit.settings(upstreams, cors=Cors(allowed_origins=(STOREFRONT,)))


async def test_a_preflight_from_an_allowed_origin_is_answered_at_the_edge(kit, upstreams):
    preflight = {
        "origin": STOREFRONT,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    async with kit.client(cors_settings(kit, upstreams)) as client:
        response = await client.options("/api/echo/orders", headers=preflight)
    # The echo upstream has no OPTIONS route: a 200 means the gateway answered.
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == STOREFRONT
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "x-request-id" in response.headers


async def test_a_preflight_from_another_origin_is_refused(kit, upstreams):
    preflight = {"origin": "https://evil.example", "access-control-request-method": "POST"}
    async with kit.client(cors_settings(kit, upstreams)) as client:
        response = await client.options("/api/echo/orders", headers=preflight)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_cross_origin_answer_lets_the_page_read_the_challenge_and_the_wait(kit, upstreams):
    async with kit.client(cors_settings(kit, upstreams)) as client:
        response = await client.get("/api/echo/x", headers={"origin": STOREFRONT})
    assert response.headers["access-control-allow-origin"] == STOREFRONT
    exposed = response.headers["access-control-expose-headers"]
    assert "WWW-Authenticate" in exposed
    assert "Retry-After" in exposed


async def test_without_allowed_origins_the_gateway_gives_no_cors_answers(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echo/x", headers={"origin": STOREFRONT})
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture
def log_lines():
    """Log lines as dicts, written to a buffer; logging is put back as it was afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    stream = io.StringIO()

    def capture(settings):
        configure_logging(settings, stream=stream)
        return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]

    yield capture
    root.handlers = saved_handlers
    root.setLevel(saved_level)
    structlog.configure(**saved_structlog)


async def test_the_access_log_names_route_status_duration_and_client_but_never_the_token(
    kit, upstreams, log_lines
):
    validator = kit.FakeTokenValidator({"secret-token": kit.access_token("amira", "storefront")})
    route = kit.Route(prefix="/api/echo", upstream="echo", auth="required")
    settings = kit.settings(upstreams, routes=[route])
    async with kit.client(settings, token_validator=validator) as client:
        lines = log_lines(settings)
        await client.get("/api/echo/orders/7", headers={"authorization": "Bearer secret-token"})
    logged = lines()
    (access,) = [
        line
        for line in logged
        if line.get("event") == "request" and line["path"] == "/api/echo/orders/7"
    ]
    assert access["gateway_route"] == "/api/echo"
    assert access["client_id"] == "storefront"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0
    assert "secret-token" not in json.dumps(logged)
