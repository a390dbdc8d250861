"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from chassis.problems import problem_response

ReadinessCheck = Callable[[], Awaitable[None]]
"""An async callable that returns when a dependency is ready and raises when it is not."""

CHECK_TIMEOUT_SECONDS = 2.0


class Readiness:
    """The checks that must pass before this instance takes traffic, and the draining flag."""

    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        self.started = False
        self.draining = False

    def add(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def evaluate(self) -> tuple[bool, dict[str, str]]:
        results = await asyncio.gather(*(self._run(c) for c in self._checks.values()))
        report = dict(zip(self._checks, results, strict=True))
        if not self.started:
            report["startup"] = "starting"
        if self.draining:
            report["shutdown"] = "draining"
        ready = self.started and not self.draining and all(r == "ok" for r in results)
        return ready, report

    @staticmethod
    async def _run(check: ReadinessCheck) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await check()
        except TimeoutError:
            return f"timed out after {CHECK_TIMEOUT_SECONDS}s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as text
            return f"{type(exc).__name__}: {exc}"
        return "ok"


router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {"status": "ok", "service": settings.service, "instance": settings.instance_id}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    ready, checks = await request.app.state.readiness.evaluate()
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    return problem_response(
        503, "not-ready", "Not ready", "This instance is not ready for traffic.", checks=checks
    )
