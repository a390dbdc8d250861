"""The console's one embedded store: spans, log lines and metric samples in a SQLite file.

Bounded three ways, so a long run cannot fill the disk: by age (``retention_seconds``), by
rows (``max_spans``, ``max_logs``) and by file size (``max_store_bytes``); the oldest go
first. SQLite is used from one worker thread (``asyncio.to_thread`` under a lock): the event
loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
  trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT NOT NULL,
  name TEXT NOT NULL, kind INTEGER NOT NULL, service TEXT NOT NULL, instance TEXT NOT NULL,
  start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, error INTEGER NOT NULL,
  attributes TEXT NOT NULL, events TEXT NOT NULL, received REAL NOT NULL,
  PRIMARY KEY (trace_id, span_id)
);
-- No index but the key: every index is one more b-tree write per span received, and spans
-- arrive by the thousand a second. Retention goes by rowid (insertion order, which is
-- the order of `received`), and the trace list groups by the key.
DROP INDEX IF EXISTS spans_by_start;
DROP INDEX IF EXISTS spans_by_received;
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL, service TEXT NOT NULL, instance TEXT NOT NULL, level TEXT NOT NULL,
  event TEXT NOT NULL, trace_id TEXT, span_id TEXT, request_id TEXT, line TEXT NOT NULL,
  received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_trace ON logs (trace_id);
CREATE INDEX IF NOT EXISTS logs_by_received ON logs (received);
CREATE TABLE IF NOT EXISTS samples (
  at REAL NOT NULL, service TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_name ON samples (name, at);
CREATE TABLE IF NOT EXISTS log_offsets (path TEXT PRIMARY KEY, offset INTEGER NOT NULL);
"""

SPAN_KINDS = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    service: str
    instance: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind_name(self) -> str:
        return SPAN_KINDS.get(self.kind, "unspecified")

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True, slots=True)
class LogLine:
    at: str
    service: str
    instance: str
    level: str
    event: str
    trace_id: str | None
    span_id: str | None
    request_id: str | None
    line: str

    def fields(self) -> dict[str, Any]:
        """The whole JSON line, as the process wrote it."""
        try:
            parsed = json.loads(self.line)
        except ValueError:
            return {"line": self.line}
        return parsed if isinstance(parsed, dict) else {"line": self.line}


@dataclass(frozen=True, slots=True)
class TraceSummary:
    trace_id: str
    root: str
    root_service: str
    start_ns: int
    duration_ms: float
    spans: int
    services: int
    errors: int


@dataclass(frozen=True, slots=True)
class LogQuery:
    text: str = ""
    service: str = ""
    level: str = ""
    trace_id: str = ""
    span_id: str = ""
    since: str = ""
    until: str = ""
    after_id: int = 0
    limit: int = 200


@dataclass(frozen=True, slots=True)
class Retention:
    seconds: float
    max_spans: int
    max_logs: int
    max_bytes: int


class Store:
    """Spans, logs and samples of the running system, with retention bounds."""

    def __init__(self, path: Path, retention: Retention) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention = retention
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = asyncio.Lock()
        # Held by the worker thread while it uses the connection, and by close(): a task
        # cancelled mid-prune releases the asyncio lock while its thread goes on, and closing
        # the connection under that thread crashed the process (a segfault in sqlite3).
        self._using = threading.Lock()

    async def _run(self, work: Any, *args: Any) -> Any:
        async with self._lock:
            return await asyncio.to_thread(self._serialized, work, *args)

    def _serialized(self, work: Any, *args: Any) -> Any:
        with self._using:
            return work(*args)

    def close(self) -> None:
        with self._using:
            self._db.close()

    # -- writing ---------------------------------------------------------------------------

    async def add_spans(self, spans: list[Span]) -> None:
        """Keep ``spans`` (a span sent twice is kept once)."""
        rows = [
            (
                s.trace_id,
                s.span_id,
                s.parent_id,
                s.name,
                s.kind,
                s.service,
                s.instance,
                s.start_ns,
                s.end_ns,
                int(s.error),
                json.dumps(s.attributes, default=str),
                json.dumps(s.events, default=str),
                time.time(),
            )
            for s in spans
        ]
        await self._run(self._insert, _INSERT_SPANS, rows)

    async def add_logs(self, lines: list[LogLine]) -> None:
        rows = [
            (
                line.at,
                line.service,
                line.instance,
                line.level,
                line.event,
                line.trace_id,
                line.span_id,
                line.request_id,
                line.line,
                time.time(),
            )
            for line in lines
        ]
        await self._run(self._insert, _INSERT_LOGS, rows)

    async def add_samples(self, samples: list[tuple[str, str, float]]) -> None:
        """``(service, name, value)`` samples taken now."""
        now = time.time()
        rows = [(now, service, name, value) for service, name, value in samples]
        await self._run(self._insert, _INSERT_SAMPLES, rows)

    def _insert(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with self._db:
                self._db.executemany(sql, rows)

    async def log_offset(self, path: str) -> int:
        row = await self._run(self._one, "SELECT offset FROM log_offsets WHERE path = ?", (path,))
        return int(row[0]) if row else 0

    async def set_log_offset(self, path: str, offset: int) -> None:
        await self._run(
            self._insert, "INSERT OR REPLACE INTO log_offsets VALUES (?, ?)", [(path, offset)]
        )

    # -- retention -------------------------------------------------------------------------

    async def prune(self) -> None:
        """Drop what is past the age, row and size bounds (the oldest first)."""
        await self._run(self._prune)

    def _prune(self) -> None:
        bounds = self.retention
        cutoff = time.time() - bounds.seconds
        with self._db:
            for table in ("logs", "samples"):
                self._db.execute(f"DELETE FROM {table} WHERE {_AGE[table]} < ?", (cutoff,))  # noqa: S608
            # Spans are kept in the order they were received: the expired ones are the first
            # rowids, found by walking from the first one to the first span still young.
            self._db.execute(
                "DELETE FROM spans WHERE rowid < coalesce("
                "(SELECT rowid FROM spans WHERE received >= ? ORDER BY rowid LIMIT 1),"
                " (SELECT max(rowid) + 1 FROM spans))",
                (cutoff,),
            )
            self._keep_newest("spans", "rowid", bounds.max_spans)
            self._keep_newest("logs", "id", bounds.max_logs)
        while self._bytes() > bounds.max_bytes and self._count("spans") + self._count("logs"):
            with self._db:
                self._keep_newest("spans", "rowid", self._count("spans") * 3 // 4)
                self._keep_newest("logs", "id", self._count("logs") * 3 // 4)
                self._db.execute("DELETE FROM samples WHERE at < ?", (time.time() - 600,))
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _keep_newest(self, table: str, order: str, keep: int) -> None:
        self._db.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table}"  # noqa: S608
            f" ORDER BY {order} DESC LIMIT -1 OFFSET ?)",
            (keep,),
        )

    def _count(self, table: str) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608

    def _bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        wal = self.path.with_name(self.path.name + "-wal")
        return int(pages * size) + (wal.stat().st_size if wal.exists() else 0)

    async def counts(self) -> dict[str, int]:
        """How many spans, log lines and samples the store holds."""
        counted: dict[str, int] = await self._run(
            lambda: {table: self._count(table) for table in ("spans", "logs", "samples")}
        )
        return counted

    # -- reading ---------------------------------------------------------------------------

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._db.execute(sql, args).fetchall()

    async def traces(
        self, *, service: str = "", text: str = "", min_ms: float = 0, limit: int = 50
    ) -> list[TraceSummary]:
        """The newest traces, with a span of ``service`` and one whose name holds ``text``."""
        where: list[str] = []
        args: list[Any] = []
        if service:
            where.append("trace_id IN (SELECT trace_id FROM spans WHERE service = ?)")
            args.append(service)
        if text:
            where.append(
                "trace_id IN (SELECT trace_id FROM spans WHERE name LIKE ? OR attributes LIKE ?"
                " OR trace_id = ?)"
            )
            args.extend([f"%{text}%", f"%{text}%", text])
        sql = (
            "SELECT trace_id, min(start_ns), max(end_ns), count(*), count(DISTINCT service),"  # noqa: S608 - fixed fragments; the values are parameters
            " sum(error) FROM spans"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " GROUP BY trace_id HAVING (max(end_ns) - min(start_ns)) >= ?"
            " ORDER BY min(start_ns) DESC LIMIT ?"
        )
        rows = await self._run(self._all, sql, (*args, int(min_ms * 1e6), limit))
        summaries = []
        for trace_id, start, end, count, services, errors in rows:
            root = await self._run(
                self._one,
                "SELECT name, service FROM spans WHERE trace_id = ? ORDER BY start_ns LIMIT 1",
                (trace_id,),
            )
            summaries.append(
                TraceSummary(
                    trace_id, root[0], root[1], start, (end - start) / 1e6, count, services, errors
                )
            )
        return summaries

    async def trace(self, trace_id: str) -> list[Span]:
        """Every span of one trace, in start order."""
        rows = await self._run(
            self._all,
            "SELECT trace_id, span_id, parent_id, name, kind, service, instance, start_ns,"
            " end_ns, error, attributes, events FROM spans WHERE trace_id = ? ORDER BY start_ns",
            (trace_id,),
        )
        return [
            Span(
                trace_id=row[0],
                span_id=row[1],
                parent_id=row[2],
                name=row[3],
                kind=row[4],
                service=row[5],
                instance=row[6],
                start_ns=row[7],
                end_ns=row[8],
                error=bool(row[9]),
                attributes=json.loads(row[10]),
                events=json.loads(row[11]),
            )
            for row in rows
        ]

    async def logs(self, query: LogQuery) -> list[tuple[int, LogLine]]:
        """Log lines matching ``query``, newest last; with ``after_id``, only newer ones."""
        where: list[str] = ["id > ?"]
        args: list[Any] = [query.after_id]
        for column, value in (
            ("service", query.service),
            ("level", query.level),
            ("trace_id", query.trace_id),
            ("span_id", query.span_id),
        ):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if query.text:
            where.append("line LIKE ?")
            args.append(f"%{query.text}%")
        if query.since:
            where.append("at >= ?")
            args.append(query.since)
        if query.until:
            where.append("at <= ?")
            args.append(query.until)
        sql = (
            "SELECT * FROM (SELECT id, at, service, instance, level, event, trace_id, span_id,"  # noqa: S608 - fixed fragments; the values are parameters
            " request_id, line FROM logs WHERE " + " AND ".join(where) + " ORDER BY id DESC"
            " LIMIT ?) ORDER BY id"
        )
        rows = await self._run(self._all, sql, (*args, query.limit))
        return [(row[0], LogLine(*row[1:])) for row in rows]

    async def series(self, name: str, *, since: float) -> dict[str, list[tuple[float, float]]]:
        """Samples of ``name`` since ``since`` (epoch seconds), per service."""
        rows = await self._run(
            self._all,
            "SELECT service, at, value FROM samples WHERE name = ? AND at >= ? ORDER BY at",
            (name, since),
        )
        found: dict[str, list[tuple[float, float]]] = {}
        for service, at, value in rows:
            found.setdefault(service, []).append((at, value))
        return found

    async def services(self) -> list[str]:
        rows = await self._run(self._all, "SELECT DISTINCT service FROM spans ORDER BY 1", ())
        return [row[0] for row in rows]


_AGE = {"logs": "received", "samples": "at"}


_INSERT_SPANS = "INSERT OR REPLACE INTO spans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_LOGS = (
    "INSERT INTO logs (at, service, instance, level, event, trace_id, span_id, request_id,"
    " line, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SAMPLES = "INSERT INTO samples VALUES (?, ?, ?, ?)"
