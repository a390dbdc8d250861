"""create_app: lifecycle hooks, docs, and what every app carries."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient


def test_start_up_hooks_run_in_order_and_shutdown_hooks_in_reverse(
    make_app: Callable[..., FastAPI],
) -> None:
    calls: list[str] = []

    def hook(name: str) -> Callable[[FastAPI], object]:
        async def record(app: FastAPI) -> None:
            assert isinstance(app, FastAPI)
            calls.append(name)

        return record

    app = make_app(
        on_startup=[hook("start-1"), hook("start-2")],
        on_shutdown=[hook("stop-1"), hook("stop-2")],
    )

    with TestClient(app):
        assert calls == ["start-1", "start-2"]

    assert calls == ["start-1", "start-2", "stop-2", "stop-1"]


def test_a_failing_start_up_hook_fails_start_up(make_app: Callable[..., FastAPI]) -> None:
    async def broken(app: FastAPI) -> None:
        raise RuntimeError("cannot reach the broker")

    app = make_app(on_startup=[broken])

    with pytest.raises(RuntimeError, match="cannot reach the broker"), TestClient(app):
        pass


def test_the_services_routers_are_served_with_its_title_and_version(
    make_app: Callable[..., FastAPI],
) -> None:
    router = APIRouter(prefix="/v1")

    @router.get("/things")
    async def things() -> list[str]:
        return ["a"]

    app = make_app(router, version="2.3.4")
    client = TestClient(app)

    assert client.get("/v1/things").json() == ["a"]
    info = client.get("/openapi.json").json()["info"]
    assert info == {"title": "demo", "version": "2.3.4"}
    assert "/healthz" not in client.get("/openapi.json").json()["paths"]


def test_a_trailing_slash_is_a_404_not_a_redirect_to_this_instances_address(
    make_app: Callable[..., FastAPI],
) -> None:
    router = APIRouter()

    @router.get("/cart")
    async def cart() -> list[str]:
        return []

    client = TestClient(make_app(router), base_url="http://127.0.0.1:43999")

    response = client.get("/cart/", follow_redirects=False)

    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"] == "application/problem+json"
