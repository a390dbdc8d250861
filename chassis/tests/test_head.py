"""HEAD is answered wherever GET is: the same status and headers, no body."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from starlette.responses import StreamingResponse


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/products/{product_id}")
    async def product(product_id: int) -> dict[str, int]:
        return {"id": product_id}

    @router.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            yield b"one,"
            yield b"two"

        return StreamingResponse(chunks(), media_type="text/csv")

    @router.post("/orders")
    async def place() -> dict[str, str]:
        return {"placed": "yes"}

    return router


def test_head_answers_as_get_without_a_body(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(_router())) as client:
        get = client.get("/products/7")
        head = client.head("/products/7")

    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


def test_head_of_a_streamed_answer_sends_no_chunk(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(_router())) as client:
        head = client.head("/stream")

    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"].startswith("text/csv")


def test_head_keeps_the_gets_errors(make_app: Callable[..., FastAPI]) -> None:
    with TestClient(make_app(_router())) as client:
        invalid = client.head("/products/seven")
        missing = client.head("/nowhere")
        post_only = client.head("/orders")

    assert (invalid.status_code, invalid.content) == (422, b"")
    assert (missing.status_code, missing.content) == (404, b"")
    # HEAD is GET's: a path served by POST alone allows neither.
    assert (post_only.status_code, post_only.headers["allow"]) == (405, "POST")
