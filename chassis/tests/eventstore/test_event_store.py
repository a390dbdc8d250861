"""The event store: streams append with optimistic concurrency, fold back into aggregates,
snapshot, and feed the outbox in the same transaction. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, select

from chassis import Database
from chassis.eventstore import (
    ConcurrencyConflict,
    EventStore,
    NewEvent,
    publish_on,
    retry_on_conflict,
)
from chassis.eventstore.tables import events, snapshots
from chassis.messaging.tables import outbox

from .databases import event_store_database
from .purses import TOPIC, NotEnoughCoins, Purse, PurseSnapshots, PursesUnitOfWork

WRITERS = 8


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with event_store_database(request.param, tmp_path) as database:
        yield database


def purses(
    database: Database, snapshots: PurseSnapshots | None = None, every: int = 0
) -> PursesUnitOfWork:
    return PursesUnitOfWork(database.sessionmaker, snapshots=snapshots, every=every)


async def add(
    database: Database,
    purse_id: str,
    *coins: int,
    snapshots: PurseSnapshots | None = None,
    every: int = 0,
) -> None:
    """Add each amount in a transaction of its own."""
    for amount in coins:
        async with purses(database, snapshots, every) as uow:
            purse = await uow.purses.get(purse_id)
            purse.add(amount)
            await uow.purses.save(purse)
            await uow.commit()


async def count(database: Database, table: Table) -> int:
    async with database.sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_appended_events_load_back_in_order_with_their_ids_and_metadata(
    database: Database,
) -> None:
    async with purses(database) as uow:
        store = uow.purses.events
        await store.append(
            "purse-amina",
            0,
            [
                NewEvent("CoinsAdded", {"coins": 5}, event_id="e1", correlation_id="order-7"),
                NewEvent("CoinsSpent", {"coins": 2}, event_id="e2", causation_id="e1"),
            ],
        )
        await store.append("purse-amina", 2, [NewEvent("CoinsAdded", {"coins": 1}, event_id="e3")])
        await uow.commit()

    async with purses(database) as uow:
        loaded = await uow.purses.events.load("purse-amina")
        version = await uow.purses.events.version("purse-amina")
        found = await uow.purses.events.find("e2")
        purse = await uow.purses.get("amina")

    assert [(e.version, e.event_type, e.data, e.event_id) for e in loaded] == [
        (1, "CoinsAdded", {"coins": 5}, "e1"),
        (2, "CoinsSpent", {"coins": 2}, "e2"),
        (3, "CoinsAdded", {"coins": 1}, "e3"),
    ]
    assert (loaded[0].correlation_id, loaded[1].causation_id) == ("order-7", "e1")
    assert all(e.recorded_at.tzinfo is not None for e in loaded)
    assert version == 3
    assert found is not None
    assert found.stream_id == "purse-amina"
    assert (purse.coins, purse.version, purse.history) == (4, 3, [5, -2, 1])


async def test_an_unknown_stream_is_empty_and_a_new_aggregate_starts_at_version_zero(
    database: Database,
) -> None:
    async with purses(database) as uow:
        assert await uow.purses.events.load("purse-nobody") == []
        assert await uow.purses.events.version("purse-nobody") == 0
        assert await uow.purses.events.find("no-such-event") is None
        purse = await uow.purses.get("nobody")
    assert (purse.coins, purse.version) == (0, 0)


@pytest.mark.parametrize("expected_version", [0, 1, 3])
async def test_appending_at_any_version_but_the_streams_own_is_a_conflict_that_stores_nothing(
    database: Database, expected_version: int
) -> None:
    await add(database, "karim", 5, 5)

    async with purses(database) as uow:
        with pytest.raises(ConcurrencyConflict) as conflict:
            await uow.purses.events.append(
                "purse-karim", expected_version, [NewEvent("CoinsAdded", {"coins": 1})]
            )

    assert conflict.value.stream_id == "purse-karim"
    assert conflict.value.expected_version == expected_version
    async with purses(database) as uow:
        assert [e.data for e in await uow.purses.events.load("purse-karim")] == [
            {"coins": 5},
            {"coins": 5},
        ]
    assert await count(database, outbox) == 2


async def test_of_writers_racing_from_one_version_exactly_one_wins_and_nothing_is_merged(
    database: Database,
) -> None:
    await add(database, "yusuf", 10)
    everyone_loaded = asyncio.Barrier(WRITERS)

    async def spend_it_all() -> None:
        async with purses(database) as uow:
            purse = await uow.purses.get("yusuf")
            await everyone_loaded.wait()  # all decide on version 1 before anyone writes
            purse.spend(10)
            await uow.purses.save(purse)
            await uow.commit()

    outcomes = await asyncio.gather(
        *(spend_it_all() for _ in range(WRITERS)), return_exceptions=True
    )

    assert outcomes.count(None) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if o is not None)
    async with purses(database) as uow:
        purse = await uow.purses.get("yusuf")
    assert (purse.coins, purse.version) == (0, 2)
    assert await count(database, outbox) == 2  # the credit and the one spend: no loser's event


async def test_of_writers_racing_to_create_a_stream_exactly_one_wins(database: Database) -> None:
    everyone_loaded = asyncio.Barrier(WRITERS)

    async def open_purse(coins: int) -> None:
        async with purses(database) as uow:
            purse = await uow.purses.get("leila")
            await everyone_loaded.wait()
            purse.add(coins)
            await uow.purses.save(purse)
            await uow.commit()

    outcomes = await asyncio.gather(
        *(open_purse(coins) for coins in range(1, WRITERS + 1)), return_exceptions=True
    )

    winners = [coins for coins, o in enumerate(outcomes, 1) if o is None]
    assert len(winners) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in outcomes if o is not None)
    async with purses(database) as uow:
        purse = await uow.purses.get("leila")
    assert purse.history == winners


async def test_retrying_on_conflict_decides_again_on_the_newer_state(database: Database) -> None:
    await add(database, "omar", 10)
    everyone_loaded = asyncio.Barrier(2)
    first_try = itertools.count()

    async def spend(coins: int) -> None:
        async with purses(database) as uow:
            purse = await uow.purses.get("omar")
            if next(first_try) < 2:
                await everyone_loaded.wait()
            purse.spend(coins)
            await uow.purses.save(purse)
            await uow.commit()

    outcomes = await asyncio.gather(
        retry_on_conflict(lambda: spend(4)),
        retry_on_conflict(lambda: spend(3)),
        return_exceptions=True,
    )

    assert list(outcomes) == [None, None]
    async with purses(database) as uow:
        purse = await uow.purses.get("omar")
    assert (purse.coins, sorted(purse.history)) == (3, [-4, -3, 10])


async def test_a_retry_refuses_what_no_longer_fits_and_retries_stop_after_their_attempts(
    database: Database,
) -> None:
    await add(database, "nadia", 10)
    tries = 0

    async def spend_after_a_rival() -> None:
        nonlocal tries
        tries += 1
        async with purses(database) as uow:
            purse = await uow.purses.get("nadia")
            purse.spend(1)
            await add(database, "nadia", 1)  # a rival gets there first, every time
            await uow.purses.save(purse)
            await uow.commit()

    with pytest.raises(ConcurrencyConflict):
        await retry_on_conflict(spend_after_a_rival, attempts=3)
    assert tries == 3

    async def spend_too_much() -> None:
        async with purses(database) as uow:
            purse = await uow.purses.get("nadia")
            purse.spend(100)

    with pytest.raises(NotEnoughCoins):
        await retry_on_conflict(spend_too_much)


async def test_leaving_without_commit_stores_neither_events_nor_outbox_rows(
    database: Database,
) -> None:
    async with purses(database, PurseSnapshots(), every=1) as uow:
        purse = await uow.purses.get("salma")
        purse.add(3)
        purse.add(4)
        await uow.purses.save(purse)

    async with purses(database) as uow:
        assert await uow.purses.events.version("purse-salma") == 0
    assert await count(database, events) == 0
    assert await count(database, outbox) == 0
    assert await count(database, snapshots) == 0


async def test_every_appended_event_is_in_the_outbox_under_its_own_id_keyed_by_its_stream(
    database: Database,
) -> None:
    await add(database, "idris", 2, 3)

    async with database.sessionmaker() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).mappings().all()
        ids = (await session.execute(select(events.c.event_id).order_by(events.c.version))).all()
    assert [row["message_id"] for row in rows] == [event_id for (event_id,) in ids]
    assert {(row["topic"], row["key"], row["event_type"]) for row in rows} == {
        (TOPIC, "purse-idris", "CoinsAdded")
    }
    assert [json.loads(row["payload"]) for row in rows] == [{"coins": 2}, {"coins": 3}]


async def test_a_store_without_an_outbox_cannot_be_asked_to_publish(database: Database) -> None:
    async with database.sessionmaker() as session:
        with pytest.raises(ValueError, match="outbox"):
            EventStore(session, publish=publish_on(TOPIC))


async def test_a_snapshot_is_taken_every_n_events_and_a_load_starts_from_the_newest(
    database: Database,
) -> None:
    await add(database, "zahra", 1, 2, 3, 4, 5, 6, 7, snapshots=PurseSnapshots(), every=3)

    async with database.sessionmaker() as session:
        taken = (await session.execute(select(snapshots.c.version))).scalars().all()
    codec = PurseSnapshots()
    async with purses(database, codec, every=3) as uow:
        purse = await uow.purses.get("zahra")
        replayed = await uow.purses.replay("zahra")

    assert sorted(taken) == [3, 6]
    assert codec.restored == 1
    assert (purse.version, purse.coins, purse.history) == (7, 28, [1, 2, 3, 4, 5, 6, 7])
    assert vars(purse) == vars(replayed)


async def test_snapshots_of_an_older_format_are_ignored_and_a_new_one_is_taken(
    database: Database,
) -> None:
    await add(database, "hassan", 1, 2, 3, snapshots=PurseSnapshots(format=1), every=2)

    changed = PurseSnapshots(format=2)
    async with purses(database, changed, every=2) as uow:
        purse = await uow.purses.get("hassan")
        purse.add(4)
        await uow.purses.save(purse)
        await uow.commit()
    async with purses(database, changed, every=2) as uow:
        again = await uow.purses.get("hassan")

    assert changed.restored == 1  # only the format-2 snapshot, taken at version 4
    assert (purse.history, again.history) == ([1, 2, 3, 4], [1, 2, 3, 4])
    async with database.sessionmaker() as session:
        kept = (await session.execute(select(snapshots.c.format, snapshots.c.version))).all()
    assert sorted(kept) == [(1, 2), (2, 4)]


changes = st.lists(
    st.lists(st.integers(min_value=-5, max_value=9), min_size=1, max_size=4), max_size=12
)
_purse_ids = itertools.count()


@settings(
    max_examples=25,
    deadline=None,
    # Each example works on a purse of its own in the test's one database.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batches=changes, every=st.integers(min_value=1, max_value=5))
async def test_a_purse_loaded_from_its_snapshots_equals_its_full_replay(
    database: Database, batches: list[list[int]], every: int
) -> None:
    purse_id = f"p{next(_purse_ids)}"
    codec = PurseSnapshots()
    expected = Purse(purse_id)
    for batch in batches:  # one transaction per batch: a save may cross several multiples
        async with purses(database, codec, every) as uow:
            purse = await uow.purses.get(purse_id)
            for change in batch:
                if change >= 0:
                    purse.add(change)
                    expected.add(change)
                elif -change <= purse.coins:
                    purse.spend(-change)
                    expected.spend(-change)
            await uow.purses.save(purse)
            await uow.commit()

    async with purses(database, codec, every) as uow:
        loaded = await uow.purses.get(purse_id)
        replayed = await uow.purses.replay(purse_id)

    expected.pending_events.clear()
    assert vars(loaded) == vars(replayed) == vars(expected)
