"""Zero trust: billing checks the caller's token itself, whatever stands in front of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from chassis.testing import readable_bearer

from .test_api import SAFFRON_ORDER, problem_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI


@pytest.fixture
async def caller(billing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of billing that sends no token unless a test gives one."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=billing_app), base_url="http://billing"
    ) as client:
        yield client


async def authorize(caller: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await caller.post(
        "/payments", json=SAFFRON_ORDER, headers={"Idempotency-Key": "key-1", **headers}
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/payments/pay-1/capture"),
        ("POST", "/payments/pay-1/void"),
        ("POST", "/payments/pay-1/refund"),
        ("GET", "/payments/pay-1"),
        ("GET", "/payments?order_id=order-1"),
    ],
)
async def test_every_payment_route_refuses_a_caller_without_a_token(
    caller: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await caller.request(method, path)

    problem_of(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_authorizing_without_a_token_is_unauthorized(caller: httpx.AsyncClient) -> None:
    problem_of(await authorize(caller, {}), 401, "unauthorized")


async def test_authorizing_with_a_forged_token_is_unauthorized(caller: httpx.AsyncClient) -> None:
    response = await authorize(caller, {"Authorization": "Bearer forged"})

    problem_of(response, 401, "invalid-token")


async def test_a_token_that_may_only_read_payments_cannot_take_one(
    caller: httpx.AsyncClient,
) -> None:
    response = await authorize(caller, readable_bearer("orders", "payments:read"))

    body = problem_of(response, 403, "insufficient-scope")
    assert body["required_scopes"] == ["payments:write"]


async def test_a_token_that_may_only_take_payments_cannot_read_them(
    caller: httpx.AsyncClient,
) -> None:
    response = await caller.get(
        "/payments",
        params={"order_id": "order-1"},
        headers=readable_bearer("orders", "payments:write"),
    )

    body = problem_of(response, 403, "insufficient-scope")
    assert body["required_scopes"] == ["payments:read"]


async def test_a_token_with_payments_write_authorizes_a_payment(caller: httpx.AsyncClient) -> None:
    response = await authorize(caller, readable_bearer("orders", "payments:write"))

    assert response.status_code == 201, response.text


async def test_health_stays_open(caller: httpx.AsyncClient) -> None:
    assert (await caller.get("/healthz")).status_code == 200
