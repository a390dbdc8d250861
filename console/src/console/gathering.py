"""What the console gathers by itself: every process's log lines and /metrics, and the
instances `souk up` runs (its state file).

Log shipping reads the JSON log files `souk up` writes, one per instance, from where it
stopped (offsets are kept in the store, so a restarted console neither loses nor repeats a
line); the scraper reads each instance's /metrics and keeps the few series the charts need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chassis import get_logger
from console.store import LogLine

if TYPE_CHECKING:
    from console.store import Store

_log = get_logger("console.gathering")
_READ_LIMIT = 1_048_576


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


@dataclass(frozen=True, slots=True)
class Scrape:
    """The series of one process's /metrics that the charts use."""

    requests: float = 0.0
    errors: float = 0.0
    duration_sum: float = 0.0
    duration_count: float = 0.0
    outbox_lag: float = 0.0
    dead_letters: float = 0.0
    consumed: float = 0.0
    saga: tuple[tuple[str, float], ...] = ()


def read_metrics(text: str) -> Scrape:
    """Sum what the charts show out of a Prometheus text exposition."""
    totals: dict[str, float] = {}
    saga: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == "http_requests_total" and labels.get("route") not in _PROBES:
                totals["requests"] = totals.get("requests", 0.0) + value
                if labels.get("status", "").startswith("5"):
                    totals["errors"] = totals.get("errors", 0.0) + value
            elif name in (
                "http_request_duration_seconds_sum",
                "http_request_duration_seconds_count",
            ):
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
    return Scrape(
        requests=totals.get("requests", 0.0),
        errors=totals.get("errors", 0.0),
        duration_sum=totals.get("sum", 0.0),
        duration_count=totals.get("count", 0.0),
        outbox_lag=totals.get("lag", 0.0),
        dead_letters=totals.get("dead", 0.0),
        consumed=totals.get("consumed", 0.0),
        saga=tuple(sorted(saga.items())),
    )


_PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
_DURATION = ("http_request_duration_seconds_sum", "http_request_duration_seconds_count")


async def scrape_once(store: Store, client: httpx.AsyncClient, data_dir: Path) -> None:
    """Scrape every instance and keep one sample per service of each charted series."""
    running = [i for i in instances(data_dir) if i.service != "console"]
    answers = await asyncio.gather(
        *(client.get(f"{instance.url}/metrics", timeout=2) for instance in running),
        return_exceptions=True,
    )
    per_service: dict[str, dict[str, float]] = {}
    for instance, answer in zip(running, answers, strict=True):
        if isinstance(answer, BaseException) or answer.status_code != 200:
            continue
        scrape = read_metrics(answer.text)
        sums = per_service.setdefault(instance.service, {})
        for name in (
            "requests",
            "errors",
            "duration_sum",
            "duration_count",
            "dead_letters",
            "consumed",
        ):
            sums[name] = sums.get(name, 0.0) + getattr(scrape, name)
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


async def gather_forever(store: Store, data_dir: Path, *, poll: float, scrape: float) -> None:
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
                    await scrape_once(store, client, data_dir)
                if now >= next_prune:
                    next_prune = now + 60
                    await store.prune()
            except Exception:  # noqa: BLE001 - one bad pass must not end the gathering
                _log.warning("gathering failed; trying again", exc_info=True)
            await asyncio.sleep(poll)
