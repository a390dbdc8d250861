"""What the console gathers by itself: every process's log lines and /metrics, and the
instances `souk up` runs (its state file) with their mesh sidecars.

Log shipping reads the JSON log files `souk up` writes, one per instance, from where it
stopped (offsets are kept in the store, so a restarted console neither loses nor repeats a
line); the scraper reads each instance's /metrics (a sidecar's Envoy stats), keeps the few
series the charts need in the store, and the newest reading of each instance in memory:
breakers, bulkheads, shedding lanes, and the upstreams each sidecar sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from chassis import get_logger
from chassis.resilience.metrics import DependencyReading, LaneReading, ResilienceReading
from console.store import LogLine

if TYPE_CHECKING:
    from console.store import Store

_log = get_logger("console.gathering")
_READ_LIMIT = 1_048_576
# `souk up` names a mesh sidecar after its application: catalog-2's is catalog-sidecar-2.
SIDECAR_SUFFIX = "-sidecar"


@dataclass(frozen=True, slots=True)
class Instance:
    """One process as `souk up` reports it in its state file."""

    service: str
    instance: str
    url: str
    state: str
    health: str
    restarts: int
    pid: int | None
    started_at: str | None


def instances(data_dir: Path) -> list[Instance]:
    """The instances in ``<data_dir>/state.json`` (none when `souk up` is not running)."""
    path = data_dir / "state.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for entry in document.get("instances", []) if isinstance(document, dict) else []:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            found.append(
                Instance(
                    service=str(entry["service"]),
                    instance=str(entry["instance"]),
                    url=str(entry["url"]),
                    state=str(entry.get("state", "")),
                    health=str(entry.get("health", "")),
                    restarts=int(entry.get("restarts", 0)),
                    pid=entry.get("pid"),
                    started_at=entry.get("started_at"),
                )
            )
    return found


def sidecar_of(instance: Instance) -> str:
    """The instance id of an application instance's sidecar (``catalog-2`` →
    ``catalog-sidecar-2``), as `souk up` names it with the mesh on."""
    index = instance.instance.rsplit("-", 1)[-1]
    return f"{instance.service}{SIDECAR_SUFFIX}-{index}"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the mesh's control plane issued an instance (its status file)."""

    spiffe_id: str
    not_after: str


def mesh_identities(data_dir: Path) -> dict[str, Identity]:
    """Each meshed instance's SPIFFE ID and certificate expiry, from
    ``<data_dir>/mesh/status.json`` (none with the mesh off)."""
    try:
        document = json.loads((data_dir / "mesh" / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for entry in document.get("instances", []) if isinstance(document, dict) else []:
        with contextlib.suppress(KeyError, TypeError):
            found[str(entry["instance"])] = Identity(
                str(entry.get("spiffe_id") or ""), str(entry.get("not_after") or "")
            )
    return found


def parse_line(raw: str, fallback_instance: str) -> LogLine:
    """A log line of a Souk process (JSON), or any other line kept as it is."""
    try:
        fields: Any = json.loads(raw)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        service = fallback_instance.rsplit("-", 1)[0]
        return LogLine("", service, fallback_instance, "raw", raw[:500], None, None, None, raw)
    instance = str(fields.get("instance") or fallback_instance)
    return LogLine(
        at=str(fields.get("timestamp", "")),
        service=str(fields.get("service") or instance.rsplit("-", 1)[0]),
        instance=instance,
        level=str(fields.get("level", "info")),
        event=str(fields.get("event", ""))[:500],
        trace_id=_text(fields.get("trace_id")),
        span_id=_text(fields.get("span_id")),
        request_id=_text(fields.get("request_id")),
        line=raw,
    )


def _text(value: Any) -> str | None:
    return str(value) if value else None


async def ship_logs_once(store: Store, logs_dir: Path) -> int:
    """Read what the log files gained since the last time; how many lines were kept."""
    kept = 0
    for path in sorted(await asyncio.to_thread(lambda: list(logs_dir.glob("*.log")))):
        key = str(path)
        offset = await store.log_offset(key)
        try:
            size = path.stat().st_size
            if size < offset:  # the file was truncated or replaced: start over
                offset = 0
            if size == offset:
                continue
            with path.open("rb") as file:
                file.seek(offset)
                chunk = file.read(_READ_LIMIT)
        except OSError:
            continue
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a last line still being written waits
        if not complete:
            continue
        lines = [
            parse_line(raw, path.stem)
            for raw in complete.decode("utf-8", "replace").splitlines()
            if raw.strip()
        ]
        await store.add_logs(lines)
        await store.set_log_offset(key, offset + len(complete))
        kept += len(lines)
    return kept


Dependency = DependencyReading
Lane = LaneReading


@dataclass(frozen=True, slots=True)
class Scrape:
    """The series of one process's /metrics that the console shows."""

    requests: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    duration_count: float = 0.0
    outbox_lag: float = 0.0
    dead_letters: float = 0.0
    consumed: float = 0.0
    saga: tuple[tuple[str, float], ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    lanes: tuple[Lane, ...] = ()
    retry_budget_refused: float = 0.0

    @property
    def breakers_open(self) -> int:
        return sum(1 for dependency in self.dependencies if dependency.breaker == "open")

    @property
    def bulkhead_rejected(self) -> float:
        return sum(dependency.bulkhead_rejected for dependency in self.dependencies)

    @property
    def shed(self) -> float:
        return sum(lane.shed for lane in self.lanes)


def read_metrics(text: str) -> Scrape:
    """What the console shows out of a Prometheus text exposition: the sums the charts
    draw, and the resilience pipeline's breakers, bulkheads and lanes."""
    totals: dict[str, float] = {}
    saga: dict[str, float] = {}
    resilience = ResilienceReading()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name.startswith("souk_"):
                resilience.read(family.name, sample)
            else:
                _read_red(sample, totals, saga)
    dependencies, lanes = resilience.dependencies, resilience.lanes
    return Scrape(
        requests=totals.get("requests", 0.0),
        errors=totals.get("errors", 0.0),
        duration_sum=totals.get("sum", 0.0),
        duration_count=totals.get("count", 0.0),
        outbox_lag=totals.get("lag", 0.0),
        dead_letters=totals.get("dead", 0.0),
        consumed=totals.get("consumed", 0.0),
        saga=tuple(sorted(saga.items())),
        dependencies=tuple(dependencies[name] for name in sorted(dependencies)),
        lanes=tuple(lanes[name] for name in sorted(lanes)),
        retry_budget_refused=resilience.retry_budget_refused,
    )


def _read_red(sample: Sample, totals: dict[str, float], saga: dict[str, float]) -> None:
    name, labels, value = sample.name, sample.labels, sample.value
    if name == "http_requests_total" and labels.get("route") not in _PROBES:
        totals["requests"] = totals.get("requests", 0.0) + value
        if labels.get("status", "").startswith("5"):
            totals["errors"] = totals.get("errors", 0.0) + value
    elif name in _DURATION:
        if labels.get("route") not in _PROBES:
            key = name.rsplit("_", 1)[1]
            totals[key] = totals.get(key, 0.0) + value
    elif name == "messaging_outbox_lag_seconds":
        totals["lag"] = max(totals.get("lag", 0.0), value)
    elif name == "messaging_dead_lettered_messages_total":
        totals["dead"] = totals.get("dead", 0.0) + value
    elif name == "messaging_consumed_messages_total":
        totals["consumed"] = totals.get("consumed", 0.0) + value
    elif name == "orders_saga_orders":
        saga[labels.get("status", "")] = saga.get(labels.get("status", ""), 0.0) + value


_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_DURATION = ("http_request_duration_seconds_sum", "http_request_duration_seconds_count")


@dataclass(slots=True)
class Upstream:
    """One upstream cluster as an Envoy sidecar sees it (its ``/stats/prometheus``)."""

    cluster: str
    healthy: float = 0.0
    members: float = 0.0
    ejected: float = 0.0
    """endpoints the outlier detection ejects now"""
    overflows: float = 0.0
    """calls refused by Envoy's circuit breakers (connections, pending, retries) so far"""
    breakers_open: tuple[str, ...] = ()
    """which of Envoy's circuit breakers are tripped now (cx, rq, rq_pending, rq_retry)"""


# Envoy writes one sample per line, label values without escapes in its cluster names.
_ENVOY_SAMPLE = re.compile(r'^envoy_cluster_(\w+)\{envoy_cluster_name="([^"]+)"\}\s+(\S+)$')
_ENVOY_OVERFLOWS = frozenset(
    {"upstream_cx_overflow", "upstream_rq_pending_overflow", "upstream_rq_retry_overflow"}
)
_ENVOY_BREAKER = re.compile(r"^circuit_breakers_default_(cx|rq|rq_pending|rq_retry)_open$")
# A sidecar's own clusters: its application, the control plane, its admin API.
_SIDECAR_OWN_CLUSTERS = frozenset({"local-app", "souk-control-plane", "admin"})


def read_envoy_stats(text: str) -> tuple[Upstream, ...]:
    """The upstreams of a sidecar out of Envoy's Prometheus stats: endpoints healthy of all,
    ejected, overflows, and which circuit breakers are open."""
    found: dict[str, Upstream] = {}
    opened: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = _ENVOY_SAMPLE.match(line)
        if match is None or match[2] in _SIDECAR_OWN_CLUSTERS:
            continue
        stat, cluster = match[1], match[2]
        try:
            value = float(match[3])
        except ValueError:
            continue
        upstream = found.setdefault(cluster, Upstream(cluster))
        breaker = _ENVOY_BREAKER.match(stat)
        if stat == "membership_healthy":
            upstream.healthy = value
        elif stat == "membership_total":
            upstream.members = value
        elif stat == "outlier_detection_ejections_active":
            upstream.ejected = value
        elif stat in _ENVOY_OVERFLOWS:
            upstream.overflows += value
        elif breaker is not None and value > 0:
            opened.setdefault(cluster, []).append(breaker[1])
    for cluster, breakers in opened.items():
        found[cluster].breakers_open = tuple(sorted(breakers))
    return tuple(found[name] for name in sorted(found))


def is_sidecar(instance: Instance) -> bool:
    """A mesh sidecar (`souk up` names them ``<service>-sidecar``, ADR 16)."""
    return instance.service.endswith(SIDECAR_SUFFIX)


@dataclass(frozen=True, slots=True)
class Reading:
    """The last scrape of one instance."""

    instance: str
    service: str
    at: float
    reachable: bool
    scrape: Scrape | None = None
    upstreams: tuple[Upstream, ...] = ()

    @property
    def sidecar(self) -> bool:
        return self.service.endswith(SIDECAR_SUFFIX)


class Readings:
    """The newest reading of every instance, kept in memory for the pages that show *now*
    (breakers, bulkheads, sidecars); the charts keep their history in the store."""

    def __init__(self) -> None:
        self.latest: dict[str, Reading] = {}

    def update(self, readings: list[Reading]) -> None:
        self.latest = {reading.instance: reading for reading in readings}


async def _read(client: httpx.AsyncClient, instance: Instance) -> Reading:
    sidecar = is_sidecar(instance)
    path = "/stats/prometheus" if sidecar else "/metrics"
    at = time.time()
    try:
        answer = await client.get(f"{instance.url}{path}", timeout=2)
        if answer.status_code != 200:
            return Reading(instance.instance, instance.service, at, reachable=False)
        if sidecar:
            upstreams = read_envoy_stats(answer.text)
            return Reading(instance.instance, instance.service, at, True, upstreams=upstreams)
        return Reading(instance.instance, instance.service, at, True, read_metrics(answer.text))
    except (httpx.HTTPError, ValueError):
        # Down, or an exposition the parser refuses: this instance only is left out.
        return Reading(instance.instance, instance.service, at, reachable=False)


_SUMMED = (
    "requests",
    "errors",
    "duration_sum",
    "duration_count",
    "dead_letters",
    "consumed",
    "bulkhead_rejected",
    "shed",
    "breakers_open",
)


async def scrape_once(
    store: Store, client: httpx.AsyncClient, data_dir: Path, readings: Readings | None = None
) -> list[Reading]:
    """Scrape every instance (a sidecar's Envoy stats too), keep one sample per service of
    each charted series, and the readings themselves in ``readings``."""
    running = [i for i in instances(data_dir) if i.service != "console"]
    found = list(await asyncio.gather(*(_read(client, instance) for instance in running)))
    if readings is not None:
        readings.update(found)
    per_service: dict[str, dict[str, float]] = {}
    for reading in found:
        scrape = reading.scrape
        if scrape is None:
            continue
        sums = per_service.setdefault(reading.service, {})
        for name in _SUMMED:
            sums[name] = sums.get(name, 0.0) + float(getattr(scrape, name))
        sums["outbox_lag"] = max(sums.get("outbox_lag", 0.0), scrape.outbox_lag)
        for status, value in scrape.saga:
            sums[f"saga:{status}"] = value
    await store.add_samples(
        [
            (service, name, value)
            for service, sums in per_service.items()
            for name, value in sums.items()
        ]
    )
    return found


async def gather_forever(
    store: Store,
    data_dir: Path,
    *,
    poll: float,
    scrape: float,
    readings: Readings | None = None,
) -> None:
    """Ship logs every ``poll`` seconds, scrape every ``scrape``, prune now and then."""
    loop = asyncio.get_running_loop()
    next_scrape = next_prune = loop.time()
    async with httpx.AsyncClient() as client:
        while True:
            try:
                await ship_logs_once(store, data_dir / "logs")
                now = loop.time()
                if now >= next_scrape:
                    next_scrape = now + scrape
                    await scrape_once(store, client, data_dir, readings)
                if now >= next_prune:
                    next_prune = now + 60
                    await store.prune()
            except Exception:  # noqa: BLE001 - one bad pass must not end the gathering
                _log.warning("gathering failed; trying again", exc_info=True)
            await asyncio.sleep(poll)
