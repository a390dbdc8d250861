"""A route that must not act twice reads its Idempotency-Key the same way in every service."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from chassis.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH, idempotency_key

Running = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def orders_app(make_app: Callable[..., FastAPI]) -> FastAPI:
    router = APIRouter()

    @router.post("/orders")
    async def place(key: Annotated[str, idempotency_key("order", description="A UUID")]) -> str:
        return key

    return make_app(router)


@pytest.mark.parametrize(
    "key", ["5b0c6f4e-4a52-5c1e-9d6f-2f8f3c1a7e10", "order-1:authorize", "a.b_c", "x" * 128]
)
async def test_a_usable_key_reaches_the_route(
    orders_app: FastAPI, running: Running, key: str
) -> None:
    async with running(orders_app) as client:
        response = await client.post("/orders", headers={"Idempotency-Key": key})

    assert (response.status_code, response.json()) == (200, key)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "idempotency-key-required"),
        ({"Idempotency-Key": "  "}, "idempotency-key-required"),
        ({"Idempotency-Key": "a b"}, "idempotency-key-invalid"),
        ({"Idempotency-Key": "order/1"}, "idempotency-key-invalid"),
        ({"Idempotency-Key": "x" * (IDEMPOTENCY_KEY_MAX_LENGTH + 1)}, "idempotency-key-invalid"),
    ],
)
async def test_a_missing_blank_or_odd_key_is_a_400_problem_naming_why(
    orders_app: FastAPI, running: Running, headers: dict[str, str], problem: str
) -> None:
    async with running(orders_app) as client:
        response = await client.post("/orders", headers=headers)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(problem)


async def test_the_problem_says_what_a_retry_without_a_key_could_repeat(
    orders_app: FastAPI, running: Running
) -> None:
    async with running(orders_app) as client:
        response = await client.post("/orders")

    assert "so a retry cannot order twice" in response.json()["detail"]


async def test_the_header_is_documented_under_its_own_name(
    orders_app: FastAPI, running: Running
) -> None:
    async with running(orders_app) as client:
        document = (await client.get("/openapi.json")).json()

    parameters = document["paths"]["/orders"]["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [("Idempotency-Key", "header")]
