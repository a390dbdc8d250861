"""Every error a chassis app returns is RFC 9457 problem+json with a stable type URI."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from chassis import ProblemError, problem_response
from chassis.problems import problem_responses
from chassis.requests import request_id_var

PROBLEM = "application/problem+json"


class Order(BaseModel):
    sku: str
    quantity: int


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/orders/{order_id}")
    async def get_order(order_id: int) -> dict[str, int]:
        if order_id == 7:
            raise ProblemError(
                409,
                "order-locked",
                "Order is locked",
                "Order 7 is being edited by someone else.",
                headers={"Retry-After": "5"},
                locked_by="clerk-3",
                attempts=2,
            )
        if order_id == 404:
            raise HTTPException(404, "Order 404 does not exist")
        return {"order_id": order_id}

    @router.post("/orders")
    async def create_order(order: Order) -> Order:
        return order

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("db password is hunter2")

    @router.get("/boom-sync")
    def boom_sync() -> None:
        raise ValueError("sync secret")

    @router.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418)

    return router


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> TestClient:
    return TestClient(make_app(_router()))


def test_a_problem_error_becomes_a_problem_document(client: TestClient) -> None:
    response = client.get("/orders/7", headers={"X-Request-Id": "req-problem-1"})

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json() == {
        "type": "https://souk.dev/problems/order-locked",
        "title": "Order is locked",
        "status": 409,
        "detail": "Order 7 is being edited by someone else.",
        "instance": "/orders/7",
        "request_id": "req-problem-1",
        "locked_by": "clerk-3",
        "attempts": 2,
    }


def test_behind_the_gateway_a_problems_instance_is_the_public_path(client: TestClient) -> None:
    # The gateway serves /api/orders/7 as /orders/7 here, and says so.
    problem = client.get("/orders/7", headers={"X-Forwarded-Prefix": "/api"})
    missing = client.get("/no/such/thing", headers={"X-Forwarded-Prefix": "/api/catalog"})

    assert problem.json()["instance"] == "/api/orders/7"
    assert missing.json()["instance"] == "/api/catalog/no/such/thing"


def test_a_problem_errors_headers_are_sent(client: TestClient) -> None:
    response = client.get("/orders/7")

    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"] == response.json()["request_id"]


def test_an_unknown_path_is_a_404_problem(client: TestClient) -> None:
    response = client.get("/no/such/thing")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://souk.dev/problems/not-found"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert body["instance"] == "/no/such/thing"
    assert body["request_id"] == response.headers["x-request-id"]


def test_an_http_exception_keeps_its_detail(client: TestClient) -> None:
    body = client.get("/orders/404").json()

    assert body["type"] == "https://souk.dev/problems/not-found"
    assert body["detail"] == "Order 404 does not exist"


def test_an_http_exception_without_detail_gets_a_slug_from_its_status(client: TestClient) -> None:
    response = client.get("/teapot")

    assert response.status_code == 418
    body = response.json()
    assert body["type"] == "https://souk.dev/problems/im-a-teapot"
    assert "detail" not in body


def test_a_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/orders/1")

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    # HEAD comes with GET (chassis.head).
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["type"] == "https://souk.dev/problems/method-not-allowed"


def test_a_405_allows_every_method_any_route_serves_the_path_with(
    make_app: Callable[..., FastAPI],
) -> None:
    # Starlette named only the first route whose path matched: "Allow: GET" here.
    router = APIRouter()
    router.add_api_route("/things", lambda: [], methods=["GET"])
    router.add_api_route("/things", lambda: {}, methods=["POST"])
    router.add_api_route("/things/{thing_id}", lambda thing_id: {"id": thing_id}, methods=["PUT"])

    with TestClient(make_app(router)) as client:
        listing = client.delete("/things")
        one = client.get("/things/7")

    assert (listing.status_code, listing.headers["allow"]) == (405, "GET, HEAD, POST")
    assert (one.status_code, one.headers["allow"]) == (405, "PUT")


def test_an_invalid_body_is_a_422_problem_listing_each_error(client: TestClient) -> None:
    response = client.post("/orders", json={"quantity": "many"})

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://souk.dev/problems/validation-error"
    assert body["instance"] == "/orders"
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["errors"] == [
        {"location": ["body", "sku"], "message": "Field required", "code": "missing"},
        {
            "location": ["body", "quantity"],
            "message": "Input should be a valid integer, unable to parse string as an integer",
            "code": "int_parsing",
        },
    ]
    assert "body.sku: Field required" in body["detail"]


def test_an_invalid_path_parameter_is_a_422_problem(client: TestClient) -> None:
    body = client.get("/orders/seven").json()

    assert body["status"] == 422
    assert [e["location"] for e in body["errors"]] == [["path", "order_id"]]
    assert body["errors"][0]["code"] == "int_parsing"


@pytest.mark.parametrize("path", ["/boom", "/boom-sync"])
def test_an_unhandled_exception_is_a_500_problem_that_hides_the_exception(
    client: TestClient, path: str
) -> None:
    response = client.get(path, headers={"X-Request-Id": "req-boom-1"})

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "req-boom-1"
    body = response.json()
    assert body["type"] == "https://souk.dev/problems/internal-error"
    assert body["status"] == 500
    assert body["request_id"] == "req-boom-1"
    assert body["instance"] == path
    assert "hunter2" not in response.text
    assert "secret" not in response.text
    assert "Error" not in body["detail"]


def test_an_unhandled_exception_logs_its_traceback_with_the_request_id(
    make_app: Callable[..., FastAPI], settings, capture_logs
) -> None:
    app = make_app(_router())
    logs = capture_logs(settings)

    response = TestClient(app).get("/boom", headers={"X-Request-Id": "req-boom-2"})

    assert response.status_code == 500
    [error] = [r for r in logs.records() if r["event"] == "unhandled error"]
    assert error["level"] == "error"
    assert error["request_id"] == "req-boom-2"
    assert error["path"] == "/boom"
    assert error["error"] == "RuntimeError"
    assert "Traceback (most recent call last)" in error["exception"]
    assert "RuntimeError: db password is hunter2" in error["exception"]


def test_the_app_keeps_serving_after_an_unhandled_exception(client: TestClient) -> None:
    assert client.get("/boom").status_code == 500
    assert client.get("/orders/1").json() == {"order_id": 1}


def test_a_problem_outside_a_request_has_no_request_id() -> None:
    assert request_id_var.get() is None
    response = problem_response(400, "bad", "Bad")

    assert json.loads(response.body) == {
        "type": "https://souk.dev/problems/bad",
        "title": "Bad",
        "status": 400,
    }
    assert response.media_type == PROBLEM


def test_problem_responses_document_problem_json_with_the_problem_model(
    make_app: Callable[..., FastAPI],
) -> None:
    router = APIRouter()

    @router.get("/things/{thing_id}", responses=problem_responses(404, 409))
    async def get_thing(thing_id: int) -> dict[str, int]:
        return {"thing_id": thing_id}

    document = TestClient(make_app(router)).get("/openapi.json").json()

    responses = document["paths"]["/things/{thing_id}"]["get"]["responses"]
    for status in ("404", "409"):
        content = responses[status]["content"]
        assert PROBLEM in content
        schemas = [media.get("schema") for media in content.values()]
        assert {"$ref": "#/components/schemas/Problem"} in schemas
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status"} <= set(problem["required"])
    assert "request_id" in problem["properties"]
