"""The console's pages, rendered on the server (no build step, no JavaScript framework)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from console.gathering import (
    Identity,
    Instance,
    Readings,
    Upstream,
    instance_client,
    instances,
    is_sidecar,
    mesh_identities,
    sidecar_of,
)
from console.store import LogQuery, Span

if TYPE_CHECKING:
    from console.settings import ConsoleSettings
    from console.store import Store

router = APIRouter(include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["timestamp"] = lambda seconds: datetime.fromtimestamp(seconds, UTC).strftime(
    "%Y-%m-%d %H:%M:%S"
)
_CHART_WINDOW_SECONDS = 900


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, {"page": template, **context})


def _readings(request: Request) -> Readings:
    readings: Readings = request.app.state.readings
    return readings


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """An instance with its mesh sidecar, if it has one."""

    instance: Instance
    sidecar: Instance | None = None
    identity: Identity | None = None
    upstreams: tuple[Upstream, ...] = ()
    """the upstreams as the sidecar sees them (its last scrape)"""


def instance_rows(
    running: list[Instance], identities: dict[str, Identity], readings: Readings
) -> list[InstanceRow]:
    """One row per instance, its sidecar beside it (a sidecar without its instance gets a
    row of its own: nothing `souk up` runs is hidden)."""
    by_id = {instance.instance: instance for instance in running}
    attached: set[str] = set()
    rows = []
    for instance in running:
        if is_sidecar(instance):
            continue
        sidecar = by_id.get(sidecar_of(instance))
        reading = readings.latest.get(sidecar.instance) if sidecar else None
        if sidecar is not None:
            attached.add(sidecar.instance)
        rows.append(
            InstanceRow(
                instance,
                sidecar,
                identities.get(instance.instance),
                reading.upstreams if reading else (),
            )
        )
    rows.extend(
        InstanceRow(instance)
        for instance in running
        if is_sidecar(instance) and instance.instance not in attached
    )
    return rows


@router.get("/", response_class=HTMLResponse)
async def instances_page(request: Request) -> HTMLResponse:
    """Every instance `souk up` runs: state, health, restarts, and its mesh sidecar (state,
    health, restarts, identity, the upstreams it sees)."""
    data_dir = _settings(request).data_dir.resolve()
    running = instances(data_dir)
    rows = instance_rows(running, mesh_identities(data_dir), _readings(request))
    counts = await _store(request).counts()
    return _page(
        request,
        "instances.html",
        rows=rows,
        meshed=any(row.sidecar for row in rows),
        counts=counts,
    )


@router.get("/resilience", response_class=HTMLResponse)
async def resilience_page(request: Request) -> HTMLResponse:
    """Breakers, bulkheads, retries and shed requests of every instance (its /metrics, as the
    chassis's resilience pipeline publishes them), and the circuit breakers, outlier
    ejections and overflows of every sidecar."""
    latest = sorted(_readings(request).latest.values(), key=lambda r: r.instance)
    services = [reading for reading in latest if not reading.sidecar]
    return _page(
        request,
        "resilience.html",
        services=services,
        dependencies=sum(len(r.scrape.dependencies) for r in services if r.scrape),
        sidecars=[reading for reading in latest if reading.sidecar],
        age=time.time() - min((r.at for r in latest), default=time.time()),
        scraped=bool(latest),
    )


@router.get("/traces", response_class=HTMLResponse)
async def traces_page(
    request: Request,
    service: str = "",
    q: str = "",
    min_ms: Annotated[float, Query(ge=0)] = 0,
) -> HTMLResponse:
    """The newest traces, searchable by service, text (span name, attribute, trace id) and
    duration."""
    store = _store(request)
    found = await store.traces(service=service, text=q, min_ms=min_ms)
    return _page(
        request,
        "traces.html",
        traces=found,
        services=await store.services(),
        service=service,
        q=q,
        min_ms=min_ms,
    )


@dataclass(frozen=True, slots=True)
class Bar:
    """A span as one row of the waterfall."""

    span: Span
    depth: int
    left: float
    width: float


def waterfall(spans: list[Span]) -> list[Bar]:
    """The spans as rows: children under their parent, bars placed on the trace's time."""
    if not spans:
        return []
    start = min(s.start_ns for s in spans)
    total = max(max(s.end_ns for s in spans) - start, 1)
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else ""
        children.setdefault(parent, []).append(span)
    rows: list[Bar] = []

    def visit(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            left = (span.start_ns - start) / total * 100
            width = max((span.end_ns - span.start_ns) / total * 100, 0.3)
            rows.append(Bar(span, depth, round(left, 3), round(min(width, 100 - left), 3)))
            visit(span.span_id, depth + 1)

    visit("", 0)
    return rows


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
async def trace_page(request: Request, trace_id: str, span: str = "") -> HTMLResponse:
    """One trace as a waterfall, each span's attributes, and the trace's logs beside it."""
    store = _store(request)
    spans = await store.trace(trace_id)
    logs = await store.logs(LogQuery(trace_id=trace_id, span_id=span, limit=500))
    selected = next((s for s in spans if s.span_id == span), None)
    return _page(
        request,
        "trace.html",
        trace_id=trace_id,
        rows=waterfall(spans),
        services=sorted({s.service for s in spans}),
        duration_ms=(max(s.end_ns for s in spans) - min(s.start_ns for s in spans)) / 1e6
        if spans
        else 0,
        logs=logs,
        selected=selected,
    )


@dataclass(frozen=True, slots=True)
class LogFilters:
    """The filters of the logs page, as query parameters."""

    q: str = ""
    service: str = ""
    level: str = ""
    trace_id: str = ""
    since: str = ""
    until: str = ""

    def query(self, *, after_id: int = 0, limit: int = 200) -> LogQuery:
        return LogQuery(
            text=self.q,
            service=self.service,
            level=self.level,
            trace_id=self.trace_id,
            since=self.since,
            until=self.until,
            after_id=after_id,
            limit=limit,
        )


Filters = Annotated[LogFilters, Depends()]


@router.get("/logs", response_class=HTMLResponse)
async def logs_page(request: Request, filters: Filters, tail: bool = False) -> HTMLResponse:
    """Log lines of every process, searchable by text, service, level, time and trace id;
    with ``tail``, the page follows new lines as they come."""
    query = filters.query()
    lines = await _store(request).logs(query)
    return _page(
        request,
        "logs.html",
        lines=lines,
        query=query,
        tail=tail,
        last_id=lines[-1][0] if lines else 0,
        services=sorted({i.service for i in instances(_settings(request).data_dir.resolve())}),
    )


@router.get("/logs/after/{last_id}", response_class=HTMLResponse)
async def log_rows_after(request: Request, last_id: int, filters: Filters) -> HTMLResponse:
    """The rows newer than ``last_id``: what the live tail appends."""
    query = filters.query(after_id=last_id, limit=500)
    return _page(request, "log_rows.html", lines=await _store(request).logs(query))


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    unit: str
    lines: list[tuple[str, str, float]]
    """(service, SVG points, last value)"""


def _chart(title: str, unit: str, series: dict[str, list[tuple[float, float]]]) -> Chart:
    now = time.time()
    values = [value for points in series.values() for _, value in points]
    top = max([*values, 1e-9])
    lines = []
    for service, points in sorted(series.items()):
        drawn = " ".join(
            f"{(at - (now - _CHART_WINDOW_SECONDS)) / _CHART_WINDOW_SECONDS * 600:.1f},"
            f"{120 - value / top * 110:.1f}"
            for at, value in points
        )
        lines.append((service, drawn, points[-1][1] if points else 0.0))
    return Chart(title, unit, lines)


def rates(
    series: dict[str, list[tuple[float, float]]],
) -> dict[str, list[tuple[float, float]]]:
    """Per-second rates of counters (a counter that went down restarted: no point there)."""
    found: dict[str, list[tuple[float, float]]] = {}
    for service, points in series.items():
        found[service] = [
            (at, (value - before) / (at - then))
            for (then, before), (at, value) in itertools.pairwise(points)
            if at > then and value >= before
        ]
    return found


@router.get("/charts", response_class=HTMLResponse)
async def charts_page(request: Request) -> HTMLResponse:
    """RED per service, outbox lag, dead letters, the saga's orders, open breakers, bulkhead
    refusals and shed requests, last 15 minutes."""
    store = _store(request)
    since = time.time() - _CHART_WINDOW_SECONDS
    requests = await store.series("requests", since=since)
    errors = await store.series("errors", since=since)
    sums = rates(await store.series("duration_sum", since=since))
    counts = rates(await store.series("duration_count", since=since))
    latency = {
        service: [
            (at, total / count * 1000)
            for (at, total), (_, count) in zip(sums.get(service, []), counts[service], strict=False)
            if count > 0
        ]
        for service in counts
    }
    saga: dict[str, list[tuple[float, float]]] = {}
    for status in ("PENDING", "CONFIRMED", "REJECTED", "CANCELLED"):
        for points in (await store.series(f"saga:{status}", since=since)).values():
            saga[status] = points
    charts = [
        _chart("Requests", "req/s", rates(requests)),
        _chart("Errors (5xx)", "err/s", rates(errors)),
        _chart("Mean latency", "ms", latency),
        _chart("Outbox lag", "s", await store.series("outbox_lag", since=since)),
        _chart("Consumed messages", "msg/s", rates(await store.series("consumed", since=since))),
        _chart("Dead letters", "total", await store.series("dead_letters", since=since)),
        _chart("Orders by status", "orders", saga),
        _chart("Open breakers", "breakers", await store.series("breakers_open", since=since)),
        _chart(
            "Refused by bulkheads",
            "calls/s",
            rates(await store.series("bulkhead_rejected", since=since)),
        ),
        _chart("Shed requests", "req/s", rates(await store.series("shed", since=since))),
    ]
    return _page(request, "charts.html", charts=charts)


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters_page(request: Request, replayed: str = "", error: str = "") -> HTMLResponse:
    """The dead letters of every service that consumes messages, each with a replay button."""
    letters: list[dict[str, Any]] = []
    for service, instance in _one_instance_per_service(request).items():
        try:
            async with instance_client(instance, timeout=3) as client:
                answer = await client.get(f"{instance.url}/internal/dead-letters")
        except httpx.HTTPError:
            continue
        if answer.status_code == 200:
            letters.extend(
                {**letter, "service": service} for letter in answer.json().get("items", [])
            )
    return _page(request, "dead_letters.html", letters=letters, replayed=replayed, error=error)


@router.post("/dead-letters/{service}/{dead_letter_id}/replay")
async def replay_dead_letter(
    request: Request, service: str, dead_letter_id: int, confirm: Annotated[str, Form()] = ""
) -> Response:
    """Replay one dead letter through its service's own replay (the `souk dlq` mechanism)."""
    instance = _one_instance_per_service(request).get(service)
    if instance is None or confirm != "yes":
        return RedirectResponse("/dead-letters?error=unknown+service", status_code=303)
    async with instance_client(instance, timeout=10) as client:
        answer = await client.post(f"{instance.url}/internal/dead-letters/{dead_letter_id}/replay")
    if answer.status_code >= 400:
        detail = answer.json().get("detail", answer.text) if answer.content else answer.status_code
        return RedirectResponse(f"/dead-letters?error={detail}", status_code=303)
    return RedirectResponse(f"/dead-letters?replayed={service}+{dead_letter_id}", status_code=303)


def _one_instance_per_service(request: Request) -> dict[str, Instance]:
    found: dict[str, Instance] = {}
    for instance in instances(_settings(request).data_dir.resolve()):
        if instance.service != "console":
            found.setdefault(instance.service, instance)
    return found
