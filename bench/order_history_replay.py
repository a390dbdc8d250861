"""Order-history benchmark: how fast the read model takes in events, and rebuilds from its archive.

Run with `.venv/bin/python bench/order_history_replay.py` (PostgreSQL is the machine's server on
127.0.0.1:5432, in a scratch database dropped afterwards; without it only SQLite runs).
`--orders` orders each tell the six events of a confirmed checkout (placed, stock reserved,
payment authorized and captured, stock committed, confirmed). Measured per backend:

- take-in: every message archived and merged, one transaction each, one after another (as a
  consumer of one partition does: the projection takes one writer at a time anyway);
- rebuild: the whole archive folded again and swapped in, as `souk replay order-history` does.

Everything runs in this one process; absolute numbers drift on shared machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chassis import Database
from chassis.messaging import Message
from contracts import Money
from contracts.events import (
    Event,
    OrderConfirmed,
    OrderItem,
    OrderPlaced,
    PaymentAuthorized,
    PaymentCaptured,
    PricedItem,
    ReservationCommitted,
    StockLine,
    StockReserved,
)
from order_history.adapters.unit_of_work import SqlAlchemyUnitOfWork
from order_history.app import MIGRATIONS
from order_history.service_layer.handlers import take_in
from order_history.service_layer.rebuilding import rebuild

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"
AT = "2026-11-25T10:00:00+00:00"


def checkout(n: int) -> list[Event]:
    """The events of the n-th confirmed checkout, in the order their services publish them."""
    order, customer, total = f"o-{n}", f"c-{n % 100}", Money(2980, "EUR")
    lines = (StockLine("SPC-SAFFRON-2G", 2),)
    priced = (PricedItem("p-1", "SPC-SAFFRON-2G", "Saffron threads", 2, Money(1490, "EUR")),)
    return [
        OrderPlaced(order, customer, (OrderItem("p-1", 2),), AT),
        StockReserved(order, lines, AT, AT),
        PaymentAuthorized(f"pay-{n}", order, total, "payment-primary", AT),
        PaymentCaptured(f"pay-{n}", order, total, AT),
        ReservationCommitted(order, lines, AT),
        OrderConfirmed(order, customer, priced, total, AT),
    ]


def as_message(event: Event, key: str) -> Message:
    return Message(event.topic, key, event.event_type, event.to_json(), event.schema_version)


@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[Database]:
    """A migrated order-history database: a SQLite file, or a scratch PostgreSQL database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            found = Database(
                f"sqlite+aiosqlite:///{directory}/order-history.db", migrations=MIGRATIONS
            )
            await found.migrate()
            yield found
            await found.dispose()
        return
    name = f"souk_bench_oh_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    found = Database(f"{POSTGRES}/{name}", migrations=MIGRATIONS)
    try:
        await found.migrate()
        yield found
    finally:
        await found.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def measure(backend: str, orders: int) -> None:
    messages = [as_message(event, f"o-{n}") for n in range(orders) for event in checkout(n)]
    async with database(backend) as db:
        started = time.perf_counter()
        for message in messages:
            await take_in(message, SqlAlchemyUnitOfWork(db.sessionmaker))
        live = time.perf_counter() - started
        started = time.perf_counter()
        rebuilt = await rebuild(SqlAlchemyUnitOfWork(db.sessionmaker))
        again = time.perf_counter() - started
    print(
        f"{backend:>8}: {len(messages)} events of {orders} orders · take-in "
        f"{len(messages) / live:,.0f} events/s · rebuild {again:.2f} s "
        f"({rebuilt.events / again:,.0f} events/s)"
    )


def postgres_is_up() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", 5432)) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if postgres_is_up() else ("sqlite",):
        asyncio.run(measure(backend, args.orders))


if __name__ == "__main__":
    main()
