from __future__ import annotations

import itertools
import json

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings


async def test_a_request_reaches_the_upstream_with_the_prefix_stripped_and_query_kept(
    kit, upstreams
):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echo/products/42?category=tea&q=mint%20leaf&page=2")
    assert response.status_code == 200
    seen = response.json()
    assert seen["path"] == "/products/42"
    assert seen["query"] == "category=tea&q=mint%20leaf&page=2"


async def test_a_prefix_matches_only_on_a_path_segment_boundary(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echoes/products")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "https://souk.dev/problems/no-route"


async def test_replicas_take_turns(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        served = [(await client.get("/api/echo/x")).headers["x-souk-upstream"] for _ in range(6)]
    assert served.count("echo-1") == 3
    assert served.count("echo-2") == 3
    assert all(a != b for a, b in itertools.pairwise(served))


async def test_the_request_id_and_trace_context_travel_to_the_upstream(kit, upstreams):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {
        "x-request-id": "order-check-123",
        "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
    }
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echo/x", headers=headers)
    seen = response.json()["headers"]
    assert response.headers["x-request-id"] == "order-check-123"
    assert seen["x-request-id"] == "order-check-123"
    # Same trace, but the parent is now the gateway's own span.
    version, upstream_trace, parent, _ = seen["traceparent"].split("-")
    assert (version, upstream_trace) == ("00", trace_id)
    assert parent != "00f067aa0ba902b7"


async def test_the_gateway_makes_a_request_id_when_the_client_sends_none(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echo/x")
    assert response.json()["headers"]["x-request-id"] == response.headers["x-request-id"]
    assert len(response.headers["x-request-id"]) >= 16


async def test_forwarded_headers_are_added_and_hop_by_hop_headers_dropped(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get(
            "/api/echo/x",
            headers={
                "connection": "keep-alive, x-secret",
                "x-secret": "only for the next hop",
                "te": "trailers",
                "x-app": "storefront",
                "x-forwarded-proto": "forged",
            },
        )
    seen = response.json()["headers"]
    assert "x-secret" not in seen
    assert seen["x-forwarded-for"] == "203.0.113.7"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-app"] == "storefront"
    assert "te" not in seen


async def test_a_request_body_is_forwarded_intact(kit, upstreams):
    body = json.dumps({"name": "Saffron threads", "price": {"amount": 1299, "currency": "EUR"}})
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.post(
            "/api/echo/products", content=body, headers={"content-type": "application/json"}
        )
    assert response.json()["body"] == body


async def test_an_oversized_body_is_refused_with_413_before_reaching_the_upstream(kit, upstreams):
    async with kit.client(kit.settings(upstreams, max_body_bytes=1024)) as client:
        response = await client.post("/api/echo/products", content=b"x" * 4096)
    assert response.status_code == 413
    assert response.json()["type"] == "https://souk.dev/problems/payload-too-large"


@pytest.mark.parametrize(
    "path",
    [
        "/api/echo/metrics",
        "/api/echo/healthz",
        "/api/echo/readyz",
        "/api/echo/%6Detrics",
        "/api/echo/%72eadyz",
        "/api/echo//metrics",
        "/api/echo/x/%2E%2E/metrics",
        "/api/echo/internal/dead-letters",
        "/api/echo/internal/dead-letters/1/replay",
        "/api/echo/%69nternal/dead-letters",
        "/api/echo//internal",
        # The services' own documents: the public reads only the gateway's merged one.
        "/api/echo/openapi.json",
        "/api/echo/docs",
        "/api/echo/redoc",
        "/api/echo/%64ocs",
        "/api/echo/x/../openapi.json",
    ],
)
async def test_operational_endpoints_of_services_are_not_public(kit, upstreams, path):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get(path)
    assert response.status_code == 404


async def test_the_gateways_own_health_and_metrics_are_served_locally(kit, upstreams):
    async with kit.client(kit.settings(upstreams), client_address="127.0.0.1") as client:
        await client.get("/api/echo/x")
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert health.json()["service"] == "gateway"
    # Labelled by the route's template, not the one catch-all `/{path:path}` (issue 16).
    assert 'route="/api/echo/{path}",status="200"' in metrics.text
    assert 'route="/{path:path}"' not in metrics.text
    assert (
        'gateway_upstream_requests_total{method="GET",route="/api/echo/{path}",'
        'status="200",upstream="echo"} 1.0'
    ) in metrics.text


def test_default_routes_are_one_prefix_per_upstream():
    settings = GatewaySettings(upstreams={"catalog": ["http://127.0.0.1:1"], "orders": []})
    assert {(r.prefix, r.upstream) for r in settings.route_table()} == {
        ("/api/catalog", "catalog"),
        ("/api/orders", "orders"),
    }


def test_the_longest_matching_prefix_wins(kit):
    settings = GatewaySettings(
        upstreams={"web": ["http://127.0.0.1:1"], "mobile": ["http://127.0.0.1:2"]},
        routes=[
            kit.Route(prefix="/", upstream="web"),
            kit.Route(prefix="/api/mobile", upstream="mobile"),
        ],
    )
    table = settings.route_table()
    assert next(r for r in table if r.matches("/api/mobile/home")).upstream == "mobile"
    assert next(r for r in table if r.matches("/cart")).upstream == "web"


def test_a_route_to_an_unknown_upstream_is_refused_at_start_up(kit):
    with pytest.raises(ValidationError, match="billing"):
        GatewaySettings(
            upstreams={"catalog": ["http://127.0.0.1:1"]},
            routes=[kit.Route(prefix="/api/pay", upstream="billing")],
        )


def test_a_route_prefix_must_be_a_clean_path(kit):
    with pytest.raises(ValidationError):
        kit.Route(prefix="api/catalog/", upstream="catalog")


async def test_a_prefix_written_with_escapes_is_no_route_not_a_server_error(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/%65cho/x")
    assert response.status_code == 404
    assert response.json()["type"] == "https://souk.dev/problems/no-route"


async def test_repeated_response_headers_all_reach_the_client(kit, upstreams):
    async with kit.client(kit.settings(upstreams)) as client:
        response = await client.get("/api/echo/cookies")
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert {c.split("=")[0] for c in cookies} == {"basket", "session"}


async def test_a_rewritten_prefix_reaches_the_upstream_under_its_own_path(kit, upstreams):
    route = kit.Route(prefix="/api/echo", upstream="echo", rewrite="/echo")
    async with kit.client(kit.settings(upstreams, routes=[route])) as client:
        response = await client.get("/api/echo/7?full=1")
        collection = await client.get("/api/echo")
    seen = response.json()
    assert seen["path"] == "/echo/7"
    assert seen["query"] == "full=1"
    # The service builds public links as X-Forwarded-Prefix + its own path.
    assert seen["headers"]["x-forwarded-prefix"] == "/api"
    assert collection.json()["path"] == "/echo"


def test_forwarded_prefixes_make_upstream_paths_public_again(kit):
    stripped = kit.Route(prefix="/api/catalog", upstream="catalog")
    rewritten = kit.Route(prefix="/api/orders", upstream="orders", rewrite="/orders")
    elsewhere = kit.Route(prefix="/shop", upstream="orders", rewrite="/orders")
    assert stripped.forwarded_prefix() + stripped.upstream_path("/api/catalog/p/1") == (
        "/api/catalog/p/1"
    )
    assert rewritten.forwarded_prefix() + rewritten.upstream_path("/api/orders/9") == (
        "/api/orders/9"
    )
    assert elsewhere.forwarded_prefix() is None


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_the_gateways_own_operational_routes_do_not_exist_for_the_public(
    kit, upstreams, path
):
    settings = kit.settings(upstreams)
    async with kit.client(settings, client_address="203.0.113.7") as outsider:
        refused = await outsider.get(path)
    async with kit.client(settings, client_address="10.1.2.3") as other_host:
        also_refused = await other_host.get(path)
    async with kit.client(
        kit.settings(upstreams, ops_networks=["10.0.0.0/8"]), client_address="10.1.2.3"
    ) as operator:
        served = await operator.get(path)

    assert (refused.status_code, also_refused.status_code) == (404, 404)
    assert refused.json()["type"] == "https://souk.dev/problems/no-route"
    assert served.status_code == 200


@pytest.mark.parametrize(
    ("forward", "expected"), [(True, "Bearer a-token"), (False, None)], ids=["kept", "stripped"]
)
async def test_a_route_that_does_not_forward_authorization_strips_it(
    kit, upstreams, forward, expected
):
    route = kit.Route(prefix="/api/echo", upstream="echo", forward_authorization=forward)
    async with kit.client(kit.settings(upstreams, routes=[route])) as client:
        response = await client.get(
            "/api/echo/x", headers={"Authorization": "Bearer a-token", "Cookie": "s=1"}
        )

    seen = response.json()["headers"]
    assert seen.get("authorization") == expected
    assert seen["cookie"] == "s=1"


def test_a_guarded_route_must_forward_its_token(kit):
    with pytest.raises(ValueError, match="would not forward it"):
        kit.Route(prefix="/api/echo", upstream="echo", auth="required", forward_authorization=False)
