"""Composition root of the console: the store, the OTLP receiver, the gathering, the pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

import chassis
from console.gathering import Readings, gather_forever
from console.otlp import router as otlp_router
from console.pages import router as pages_router
from console.settings import ConsoleSettings
from console.store import Retention, Store


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    """The console; it sends no spans of its own (it would be tracing itself), so it records
    none either: a span per OTLP export received would be built only to be thrown away."""
    settings = (settings or ConsoleSettings()).model_copy(
        update={"otlp_endpoint": None, "trace_sample_ratio": 0.0}
    )
    tasks: list[asyncio.Task[None]] = []

    async def open_store(app: FastAPI) -> None:
        # A line per scrape of every instance would drown the console's own log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        store = Store(
            settings.store_file(),
            Retention(
                seconds=settings.retention_seconds,
                max_spans=settings.max_spans,
                max_logs=settings.max_logs,
                max_bytes=settings.max_store_bytes,
            ),
        )
        app.state.store = store
        app.state.readings = readings = Readings()
        tasks.append(
            asyncio.create_task(
                gather_forever(
                    store,
                    settings.data_dir.resolve(),
                    poll=settings.poll_seconds,
                    scrape=settings.scrape_seconds,
                    readings=readings,
                ),
                name="console-gathering",
            )
        )

    async def close_store(app: FastAPI) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()
        app.state.store.close()

    return chassis.create_app(
        settings,
        title="Souk console",
        description="Traces, logs, metrics, instances and dead letters of the running Souk.",
        routers=[otlp_router, pages_router],
        on_startup=[open_store],
        on_shutdown=[close_store],
    )
