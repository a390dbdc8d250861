"""Request identity: X-Request-Id in and out, the instance header, and outbound propagation."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from chassis.requests import outbound_headers, request_id_from

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
FRESH_ID = re.compile(r"^[0-9a-f]{32}$")
W3C_TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-[0-9a-f]{2}$")


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/echo")
    async def echo() -> dict[str, str]:
        return {"ok": "yes"}

    @router.get("/outbound")
    async def outbound() -> dict[str, str]:
        return outbound_headers()

    @router.get("/outbound-sync")
    def outbound_sync() -> dict[str, str]:
        return outbound_headers()

    return router


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> TestClient:
    return TestClient(make_app(_router()))


@pytest.mark.parametrize(
    "request_id",
    ["abc-123", "0f1e2d3c4b5a", "gateway-1:req.42_x", "a" * 128],
)
def test_a_well_formed_request_id_is_echoed(client: TestClient, request_id: str) -> None:
    response = client.get("/echo", headers={"X-Request-Id": request_id})

    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [
        b"has spaces",
        b"<script>alert(1)</script>",
        b"semi;colon",
        "\u00e9-accent".encode("latin-1"),
        b"a" * 129,
        b"",
    ],
)
def test_a_malformed_or_oversized_request_id_is_replaced(
    client: TestClient, request_id: bytes
) -> None:
    response = client.get("/echo", headers={"X-Request-Id": request_id})

    assert FRESH_ID.match(response.headers["x-request-id"])


def test_a_fresh_request_id_is_made_for_each_request_without_one(client: TestClient) -> None:
    first = client.get("/echo").headers["x-request-id"]
    second = client.get("/echo").headers["x-request-id"]

    assert FRESH_ID.match(first)
    assert FRESH_ID.match(second)
    assert first != second


def test_request_id_from_accepts_plain_ids_and_replaces_others() -> None:
    assert request_id_from("abc") == "abc"
    assert FRESH_ID.match(request_id_from(None))
    assert FRESH_ID.match(request_id_from("a\r\nSet-Cookie: x=1"))


def test_every_response_names_the_instance_that_served_it(client: TestClient) -> None:
    assert client.get("/echo").headers["x-souk-instance"] == "demo-1"
    assert client.get("/missing").headers["x-souk-instance"] == "demo-1"


@pytest.mark.parametrize("path", ["/outbound", "/outbound-sync"])
def test_outbound_headers_carry_the_request_id_and_the_incoming_trace(
    client: TestClient, path: str
) -> None:
    response = client.get(path, headers={"X-Request-Id": "req-out-1", "traceparent": TRACEPARENT})

    headers = response.json()
    assert headers["x-request-id"] == "req-out-1"
    traceparent = W3C_TRACEPARENT.match(headers["traceparent"])
    assert traceparent is not None
    assert traceparent["trace"] == TRACE_ID
    # The outbound parent is this service's own span, not the caller's.
    assert traceparent["span"] != PARENT_SPAN_ID


def test_outbound_headers_start_a_trace_when_none_came_in(client: TestClient) -> None:
    headers = client.get("/outbound").json()

    assert FRESH_ID.match(headers["x-request-id"])
    traceparent = W3C_TRACEPARENT.match(headers["traceparent"])
    assert traceparent is not None
    assert traceparent["trace"] != "0" * 32


def test_outbound_headers_outside_a_request_carry_no_request_id() -> None:
    assert "x-request-id" not in outbound_headers()
