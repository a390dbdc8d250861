"""Liveness and readiness: /healthz always answers, /readyz only when the instance can serve."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chassis import health


async def _ok() -> None:
    return None


async def _broken() -> None:
    raise ConnectionError("broker unreachable")


async def _hangs() -> None:
    await asyncio.Event().wait()


def test_healthz_names_the_service_and_instance(make_app: Callable[..., FastAPI]) -> None:
    response = TestClient(make_app()).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "demo", "instance": "demo-1"}


def test_readyz_is_200_when_every_check_passes(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(readiness_checks={"cache": _ok, "broker": _ok})

    with TestClient(app) as client:
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"cache": "ok", "broker": "ok"}}


def test_readyz_is_a_503_problem_naming_the_check_that_fails(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(readiness_checks={"cache": _ok, "broker": _broken})

    with TestClient(app) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://souk.dev/problems/not-ready"
    assert body["checks"] == {"cache": "ok", "broker": "ConnectionError: broker unreachable"}


async def test_readyz_reports_a_check_that_hangs_as_timed_out(
    make_app: Callable[..., FastAPI], running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.05)
    app = make_app(readiness_checks={"cache": _ok, "upstream": _hangs})

    async with running(app) as client, asyncio.timeout(10):
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["type"] == "https://souk.dev/problems/not-ready"
    assert response.json()["checks"] == {"cache": "ok", "upstream": "timed out after 0.05s"}


async def test_readyz_is_not_ready_until_start_up_has_finished(
    make_app: Callable[..., FastAPI],
) -> None:
    seen: list[httpx.Response] = []

    async def probe_during_startup(app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
            seen.append(await client.get("/readyz"))

    app = make_app(readiness_checks={"cache": _ok}, on_startup=[probe_during_startup])

    with TestClient(app) as client:
        after = client.get("/readyz")

    [during] = seen
    assert during.status_code == 503
    assert during.json()["checks"] == {"cache": "ok", "startup": "starting"}
    assert after.status_code == 200


async def test_readyz_reports_draining_once_shutdown_begins(
    make_app: Callable[..., FastAPI],
) -> None:
    seen: list[httpx.Response] = []

    async def probe_during_shutdown(app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
            seen.append(await client.get("/readyz"))

    app = make_app(on_shutdown=[probe_during_shutdown])

    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200

    [during] = seen
    assert during.status_code == 503
    assert during.json()["checks"] == {"shutdown": "draining"}


async def test_an_app_started_again_in_the_same_process_is_ready_again(
    make_app: Callable[..., FastAPI],
) -> None:
    # e.g. one module-level app used by several tests, each with its own `with TestClient(app)`.
    during_startup: list[int] = []

    async def probe_during_startup(app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
            during_startup.append((await client.get("/readyz")).status_code)

    app = make_app(readiness_checks={"cache": _ok}, on_startup=[probe_during_startup])
    after_startup: list[httpx.Response] = []

    for _ in range(2):
        with TestClient(app) as client:
            after_startup.append(client.get("/readyz"))

    assert during_startup == [503, 503]
    assert [r.status_code for r in after_startup] == [200, 200], after_startup[-1].json()
