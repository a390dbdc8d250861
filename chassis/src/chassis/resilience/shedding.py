"""Overload shedding for HTTP: so many requests at once per lane, the rest answered 503 at once.

Reads (GET, HEAD) and writes go through separate lanes, so a slow checkout filling the write
lane leaves ``GET /orders/{id}`` alive. Over a lane's limit a request is not queued: it gets
``503`` problem+json with ``Retry-After`` before any of the app runs. Probes and metrics are
never shed. The same module puts the request's deadline (``x-request-deadline-ms``) in
context, and answers a request whose deadline has already passed 504 without starting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from starlette.datastructures import Headers

from chassis.problems import problem_response
from chassis.resilience import deadline

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.types import ASGIApp, Receive, Scope, Send

_EXEMPT: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_READS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class Lane:
    """Requests of one kind worked on at once, up to ``limit``."""

    name: str
    limit: int
    working: int = 0
    shed: int = 0


@dataclass(slots=True)
class Lanes:
    """The process's lanes: HTTP reads, HTTP writes and gRPC calls; made once, read by the
    middleware, the gRPC server's interceptor and the metrics."""

    reads: Lane
    writes: Lane
    calls: Lane

    @classmethod
    def of(cls, *, reads: int, writes: int, calls: int = 64) -> Lanes:
        return cls(Lane("read", reads), Lane("write", writes), Lane("grpc", calls))

    def __iter__(self) -> Iterator[Lane]:
        return iter((self.reads, self.writes, self.calls))


class LoadShedding:
    """ASGI middleware: a lane for reads and one for writes; over the limit, 503 at once."""

    def __init__(self, app: ASGIApp, *, lanes: Lanes, retry_after: int = 1) -> None:
        self.app = app
        self.reads = lanes.reads
        self.writes = lanes.writes
        self.retry_after = str(retry_after)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        granted = deadline.seconds_from_header(Headers(scope=scope).get(deadline.DEADLINE_HEADER))
        if granted is not None and granted <= 0:
            response = problem_response(
                504,
                "deadline-exceeded",
                "Deadline exceeded",
                "The request's deadline passed before the work could start.",
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        lane = self.reads if scope["method"] in _READS else self.writes
        if lane.working >= lane.limit:
            lane.shed += 1
            response = problem_response(
                503,
                "overloaded",
                "Overloaded",
                f"Too many {lane.name} requests at once; try again shortly.",
                instance=scope["path"],
                headers={"Retry-After": self.retry_after},
            )
            await response(scope, receive, send)
            return
        lane.working += 1
        try:
            with deadline.within(granted):
                await self.app(scope, receive, send)
        finally:
            lane.working -= 1
