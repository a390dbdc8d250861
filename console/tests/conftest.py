"""Fixtures of the console's tests: a console on a temporary data directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from console.app import create_app
from console.settings import ConsoleSettings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    return tmp_path


@pytest.fixture
async def console(data_dir: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = ConsoleSettings(
        service="console", instance="console-1", data_dir=data_dir, poll_seconds=0.05
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://console.test") as client,
    ):
        yield app, client
