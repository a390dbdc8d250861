"""Event-store benchmark: Souk's event store beside the `eventsourcing` library, on SQLite and
PostgreSQL.

Run with `.venv/bin/python bench/eventstore.py` (PostgreSQL is the machine's server on
127.0.0.1:5432, each run in a scratch database of its own, dropped afterwards; without it
only SQLite runs). Measured per store and backend, each `--repeat` times, medians shown:

- append, 1 writer: one command after another, each appending one event to one of
  `--aggregates` aggregates kept in memory, one transaction per command;
- append, N writers: the same events shared by `--writers` writers at once, each on
  aggregates of its own (Souk: coroutines in one event loop; eventsourcing, which is
  synchronous: threads);
- rebuild: loading one aggregate of `--stream-length` events, without snapshots (every
  event folded) and with a snapshot every `--snapshot-every` events.

Souk's appends also write each event's outbox row (what a service publishes from), in the
same transaction; eventsourcing's application recorder gives each event a notification id
in a global sequence (its way to feed what follows), and on PostgreSQL takes a table lock
to keep that sequence gapless. Both store the same small JSON event. Everything runs in
this one process; absolute numbers drift on shared machines, compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from chassis.db import Database
from chassis.eventstore import AggregateStore, EventStore, NewEvent, RecordedEvent, publish_on
from chassis.eventstore.tables import metadata as event_store_tables
from chassis.messaging.tables import metadata as messaging_tables
from chassis.unit_of_work import SqlAlchemyUnitOfWork

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import async_sessionmaker

HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES = f"postgresql+asyncpg://postgres@{HOST}:{POSTGRES_PORT}"
BACKENDS = ("sqlite", "postgres")
TOPIC = "tallies"


def progress(line: str) -> None:
    """Show ``line`` on stderr, leaving stdout to the table."""
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Settings:
    """What each run does."""

    events: int
    aggregates: int
    writers: int
    stream_length: int
    snapshot_every: int
    rebuilds: int


@dataclass(slots=True)
class Runs:
    """Each run's rate of one measure, for one store on one backend."""

    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


# --- Souk's store: a tally aggregate, its codecs, a unit of work ------------------------------


class Tally:
    """The benchmark's aggregate: a number that events add to."""

    def __init__(self, id: str) -> None:  # noqa: A002 - the aggregate's identity
        self.id = id
        self.version = 0
        self.total = 0
        self.pending_events: list[int] = []

    def add(self, n: int) -> None:
        self.apply(n)
        self.pending_events.append(n)

    def apply(self, event: int) -> None:
        self.total += event
        self.version += 1


class TallyEvents:
    """The event codec: ``{"n": ...}``."""

    def encode(self, event: int) -> NewEvent:
        return NewEvent("Added", {"n": event})

    def decode(self, event: RecordedEvent) -> int:
        n: int = event.data["n"]
        return n


class TallySnapshots:
    """The snapshot codec."""

    format = 1

    def state_of(self, tally: Tally) -> Mapping[str, Any]:
        return {"total": tally.total}

    def restore(self, tally_id: str, version: int, state: Mapping[str, Any]) -> Tally:
        tally = Tally(tally_id)
        tally.version, tally.total = version, state["total"]
        return tally


class TalliesUnitOfWork(SqlAlchemyUnitOfWork):
    """Tallies in the event store, their events into the outbox, as a service would have it."""

    tallies: AggregateStore[Tally, int]

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, snapshot_every: int
    ) -> None:
        super().__init__(sessionmaker)
        self._snapshot_every = snapshot_every

    def open_repositories(self, session: AsyncSession) -> None:
        self.tallies = AggregateStore(
            EventStore(session, outbox=self.outbox, publish=publish_on(TOPIC)),
            category="tally",
            create=Tally,
            codec=TallyEvents(),
            snapshots=TallySnapshots(),
            snapshot_every=self._snapshot_every,
        )


class Store(Protocol):
    """One event store under test, on one backend."""

    name: str

    async def append(self, writers: int, settings: Settings) -> float:
        """Events/s appended by ``writers`` writers at once, one event per transaction."""
        ...

    async def rebuild(self, settings: Settings, *, snapshots: bool) -> float:
        """Rebuilds/s of one aggregate of ``settings.stream_length`` events."""
        ...


class SoukStore:
    """Souk's event store on a chassis Database."""

    name = "souk"

    def __init__(self, url: str) -> None:
        self._url = url

    @contextlib.asynccontextmanager
    async def _database(self) -> AsyncIterator[Database]:
        database = Database(self._url)
        try:
            async with database.engine.begin() as connection:
                await connection.run_sync(event_store_tables.create_all)
                await connection.run_sync(messaging_tables.create_all)
            yield database
        finally:
            await database.dispose()

    async def append(self, writers: int, settings: Settings) -> float:
        async with self._database() as database:
            per_writer = settings.events // writers
            run = uuid.uuid4().hex[:8]

            async def write(writer: int) -> None:
                tallies = [
                    Tally(f"{run}-{writer}-{n}")
                    for n in range(max(1, settings.aggregates // writers))
                ]
                for n in range(per_writer):
                    tally = tallies[n % len(tallies)]
                    tally.add(1)
                    async with TalliesUnitOfWork(database.sessionmaker, snapshot_every=0) as uow:
                        await uow.tallies.save(tally)
                        await uow.commit()

            began = time.perf_counter()
            await asyncio.gather(*(write(w) for w in range(writers)))
            return per_writer * writers / (time.perf_counter() - began)

    async def rebuild(self, settings: Settings, *, snapshots: bool) -> float:
        every = settings.snapshot_every if snapshots else 0
        async with self._database() as database:
            tally = Tally(uuid.uuid4().hex)
            for first in range(0, settings.stream_length, 100):
                for n in range(first, min(first + 100, settings.stream_length)):
                    tally.add(n)
                async with TalliesUnitOfWork(database.sessionmaker, snapshot_every=every) as uow:
                    await uow.tallies.save(tally)
                    await uow.commit()
            began = time.perf_counter()
            for _ in range(settings.rebuilds):
                async with TalliesUnitOfWork(database.sessionmaker, snapshot_every=every) as uow:
                    loaded = await uow.tallies.get(tally.id)
                if loaded.total != tally.total or loaded.version != tally.version:
                    raise RuntimeError("a rebuilt tally differs from the one written")
            return settings.rebuilds / (time.perf_counter() - began)


# --- the eventsourcing library ----------------------------------------------------------------


def eventsourcing_missing() -> str | None:
    """Why the eventsourcing library cannot run here, or None."""
    if importlib.util.find_spec("eventsourcing") is None:
        return (
            "not installed (`.venv/bin/pip install eventsourcing 'psycopg[binary,pool]'` "
            "to compare)"
        )
    return None


@functools.cache
def eventsourcing_tally() -> Any:
    """The tally as an eventsourcing Aggregate (defined once: the library names classes)."""
    from eventsourcing.domain import Aggregate, event  # noqa: PLC0415 - optional

    class EsTally(Aggregate):
        def __init__(self) -> None:
            self.total = 0

        @event("Added")
        def add(self, n: int) -> None:
            self.total += n

    return EsTally


@functools.cache
def eventsourcing_applications() -> tuple[Any, Any]:
    """The eventsourcing Applications: one without snapshots, one that takes them."""
    from eventsourcing.application import Application  # noqa: PLC0415 - optional

    class EsTallies(Application[Any]):
        pass

    class EsSnapshottingTallies(Application[Any]):
        pass

    return EsTallies, EsSnapshottingTallies


class EventsourcingStore:
    """The eventsourcing library's Application, on its sqlite or postgres persistence module."""

    name = "eventsourcing"

    def __init__(self, env: dict[str, str]) -> None:
        self._env = env

    def _application(self, snapshot_every: int) -> Any:
        plain, snapshotting = eventsourcing_applications()
        if not snapshot_every:
            return plain(env=self._env)
        snapshotting.snapshotting_intervals = {eventsourcing_tally(): snapshot_every}
        return snapshotting(env={**self._env, "IS_SNAPSHOTTING_ENABLED": "y"})

    async def append(self, writers: int, settings: Settings) -> float:
        return await asyncio.to_thread(self._append, writers, settings)

    def _append(self, writers: int, settings: Settings) -> float:
        application = self._application(0)
        try:
            per_writer = settings.events // writers
            tallies = [
                [eventsourcing_tally()() for _ in range(max(1, settings.aggregates // writers))]
                for _ in range(writers)
            ]
            for mine in tallies:  # the Created events, outside the measurement
                application.save(*mine)
            start = threading.Barrier(writers)

            def write(mine: list[Any]) -> None:
                start.wait()
                for n in range(per_writer):
                    tally = mine[n % len(mine)]
                    tally.add(1)
                    application.save(tally)

            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=writers) as pool:
                list(pool.map(write, tallies))
            return per_writer * writers / (time.perf_counter() - began)
        finally:
            application.close()

    async def rebuild(self, settings: Settings, *, snapshots: bool) -> float:
        return await asyncio.to_thread(self._rebuild, settings, snapshots)

    def _rebuild(self, settings: Settings, snapshots: bool) -> float:
        application = self._application(settings.snapshot_every if snapshots else 0)
        try:
            tally = eventsourcing_tally()()  # its Created event is version 1
            for first in range(1, settings.stream_length, 100):
                for n in range(first, min(first + 100, settings.stream_length)):
                    tally.add(n)
                application.save(tally)
            began = time.perf_counter()
            for _ in range(settings.rebuilds):
                loaded = application.repository.get(tally.id)
                if loaded.total != tally.total or loaded.version != tally.version:
                    raise RuntimeError("a rebuilt tally differs from the one written")
            return settings.rebuilds / (time.perf_counter() - began)
        finally:
            application.close()


# --- backends ---------------------------------------------------------------------------------


def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be used, or None."""
    with contextlib.suppress(OSError), socket.create_connection((HOST, POSTGRES_PORT), timeout=1):
        return None
    return f"no server on {HOST}:{POSTGRES_PORT}"


@contextlib.asynccontextmanager
async def scratch_postgres() -> AsyncIterator[str]:
    """A new PostgreSQL database's name, dropped afterwards."""
    name = f"souk_bench_es_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield name
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@contextlib.contextmanager
def scratch_directory() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="souk-bench-es-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def stores(backend: str, writers: int) -> AsyncIterator[list[Store]]:
    """Each store on a fresh database of ``backend``; dropped when the context ends."""
    if backend == "sqlite":
        with scratch_directory() as directory:
            found: list[Store] = [SoukStore(f"sqlite+aiosqlite:///{directory / 'souk.db'}")]
            if eventsourcing_missing() is None:
                found.append(
                    EventsourcingStore(
                        {
                            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                            "SQLITE_DBNAME": str(directory / "eventsourcing.db"),
                            "SQLITE_LOCK_TIMEOUT": "30",
                        }
                    )
                )
            yield found
        return
    async with scratch_postgres() as souk_db, scratch_postgres() as es_db:
        found = [SoukStore(f"{POSTGRES}/{souk_db}")]
        if eventsourcing_missing() is None:
            found.append(
                EventsourcingStore(
                    {
                        "PERSISTENCE_MODULE": "eventsourcing.postgres",
                        "POSTGRES_DBNAME": es_db,
                        "POSTGRES_HOST": HOST,
                        "POSTGRES_PORT": str(POSTGRES_PORT),
                        "POSTGRES_USER": "postgres",
                        "POSTGRES_PASSWORD": os.environ.get("PGPASSWORD", ""),
                        "POSTGRES_POOL_SIZE": str(writers),
                    }
                )
            )
        yield found


# --- running and reporting --------------------------------------------------------------------

Measure = tuple[str, str, Callable[[Store, Settings], Any]]


def measures(settings: Settings) -> list[Measure]:
    """(name, unit, how) of each measure, in the table's order."""
    return [
        ("append, 1 writer", "events/s", lambda store, s: store.append(1, s)),
        (
            f"append, {settings.writers} writers",
            "events/s",
            lambda store, s: store.append(s.writers, s),
        ),
        (
            f"rebuild {settings.stream_length:,}-event aggregate, no snapshot",
            "rebuilds/s",
            lambda store, s: store.rebuild(s, snapshots=False),
        ),
        (
            f"rebuild, snapshot every {settings.snapshot_every}",
            "rebuilds/s",
            lambda store, s: store.rebuild(s, snapshots=True),
        ),
    ]


async def bench(backend: str, settings: Settings, repeat: int) -> dict[tuple[str, str], Runs]:
    """Runs per (measure, store) on ``backend``; stores alternate within each run."""
    results: dict[tuple[str, str], Runs] = {}
    for run in range(1, repeat + 1):
        for name, unit, how in measures(settings):
            async with stores(backend, settings.writers) as found:
                for store in found:
                    rate = await how(store, settings)
                    results.setdefault((name, store.name), Runs()).rates.append(rate)
                    progress(
                        f"  {backend} run {run}/{repeat} {name}: {store.name} {rate:,.0f} {unit}"
                    )
    return results


def table(
    results: dict[str, dict[tuple[str, str], Runs]], settings: Settings, repeat: int
) -> list[str]:
    """The results as aligned rows: each measure and backend, both stores and their ratio."""
    rows = [("measure", "backend", "souk", "eventsourcing", "souk / eventsourcing")]
    for name, unit, _ in measures(settings):
        for backend, runs in results.items():
            souk = runs.get((name, "souk"))
            other = runs.get((name, "eventsourcing"))
            if souk is None:
                continue
            rows.append(
                (
                    name,
                    backend,
                    f"{souk.median:,.0f} {unit}",
                    f"{other.median:,.0f} {unit}" if other else "-",
                    f"{souk.median / other.median:.2f}x" if other else "-",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        f"Event-store benchmark: {settings.events} events per append run over "
        f"{settings.aggregates} aggregates, one event per transaction; median of {repeat} runs",
        *("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
          for row in rows),
    ]  # fmt: skip


async def main_async(backends: list[str], settings: Settings, repeat: int) -> None:
    """Bench each backend that can run; print the table and what was skipped."""
    results: dict[str, dict[tuple[str, str], Runs]] = {}
    notes: list[str] = []
    missing = eventsourcing_missing()
    if missing is not None:
        notes.append(f"eventsourcing: {missing}; Souk's store alone measured")
        progress(notes[-1])
    for backend in backends:
        skipped = postgres_missing() if backend == "postgres" else None
        if skipped is not None:
            notes.append(f"{backend}: skipped, {skipped}")
            progress(notes[-1])
            continue
        progress(f"{backend}: {repeat} runs")
        results[backend] = await bench(backend, settings, repeat)
    print("\n".join([*table(results, settings, repeat), *notes]))


def main() -> None:
    """Parse the options and run the bench."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--events", type=int, default=2000, help="events per append run")
    parser.add_argument("--aggregates", type=int, default=40, help="aggregates appended to")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers")
    parser.add_argument("--stream-length", type=int, default=1000, help="events to rebuild")
    parser.add_argument("--snapshot-every", type=int, default=100, help="events per snapshot")
    parser.add_argument("--rebuilds", type=int, default=20, help="rebuilds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; medians shown")
    args = parser.parse_args()
    settings = Settings(
        events=args.events,
        aggregates=args.aggregates,
        writers=args.writers,
        stream_length=args.stream_length,
        snapshot_every=args.snapshot_every,
        rebuilds=args.rebuilds,
    )
    asyncio.run(main_async(args.backends, settings, args.repeat))


if __name__ == "__main__":
    main()
