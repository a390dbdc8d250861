"""A chassis app's OpenAPI document says what the app answers and accepts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from chassis.idempotency import idempotency_key
from chassis.openapi import links
from chassis.problems import problem_responses

PROBLEM = {"$ref": "#/components/schemas/Problem"}


class Order(BaseModel):
    sku: str


def _router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/orders",
        status_code=201,
        responses={
            **problem_responses(400, 409),
            **links(201, GetOrder=("get_order", {"order_id": "$response.body#/sku"})),
        },
    )
    async def place(
        order: Order,
        key: Annotated[str, idempotency_key("order", description="A new UUID per order.")],
    ) -> Order:
        return order

    @router.get("/orders/{order_id}", operation_id="get_order")
    async def get_order(order_id: int) -> Order:
        return Order(sku=str(order_id))

    return router


def _document(make_app: Callable[..., FastAPI]) -> dict:
    with TestClient(make_app(_router())) as client:
        return client.get("/openapi.json").json()


def test_problems_are_documented_as_problem_json_only(make_app: Callable[..., FastAPI]) -> None:
    document = _document(make_app)
    placing = document["paths"]["/orders"]["post"]["responses"]
    reading = document["paths"]["/orders/{order_id}"]["get"]["responses"]

    # problem_responses, and FastAPI's own 422 (answered as a problem by the chassis).
    for response in (placing["409"], placing["422"], reading["422"]):
        assert response["content"] == {"application/problem+json": {"schema": PROBLEM}}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]


def test_a_body_that_cannot_be_read_is_a_documented_400(make_app: Callable[..., FastAPI]) -> None:
    placing = _document(make_app)["paths"]["/orders"]["post"]["responses"]
    with TestClient(make_app(_router())) as client:
        unreadable = client.post(
            "/orders",
            content=b"\xff",
            headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"},
        )

    assert unreadable.status_code == 400
    assert placing["400"]["content"] == {"application/problem+json": {"schema": PROBLEM}}


def test_the_idempotency_key_is_documented_as_required_in_its_pattern(
    make_app: Callable[..., FastAPI],
) -> None:
    [key] = _document(make_app)["paths"]["/orders"]["post"]["parameters"]

    assert key["name"] == "Idempotency-Key"
    assert key["required"] is True
    assert key["schema"]["type"] == "string"
    assert key["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,128}$"
    assert key["schema"]["maxLength"] == 128


def test_a_link_names_the_operation_and_where_its_parameters_come_from(
    make_app: Callable[..., FastAPI],
) -> None:
    created = _document(make_app)["paths"]["/orders"]["post"]["responses"]["201"]

    assert created["links"] == {
        "GetOrder": {"operationId": "get_order", "parameters": {"order_id": "$response.body#/sku"}}
    }
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/Order")
