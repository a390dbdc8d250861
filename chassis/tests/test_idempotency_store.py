"""One store of Idempotency-Keys for every service: what a key did, once, on each backend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from chassis.db import NAMING_CONVENTION, UTCDateTime
from chassis.idempotency import (
    IDEMPOTENCY_KEY_COLUMN_LENGTH,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    IdempotencyKeys,
    IdempotencyRecord,
    idempotency_keys_table,
)
from souk.testing import scratch_database

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

metadata = MetaData(naming_convention=NAMING_CONVENTION)
things = Table("things", metadata, Column("id", String(36), primary_key=True))
keys = idempotency_keys_table(
    metadata,
    Column("thing_id", String(36), ForeignKey("things.id"), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("version", Integer, nullable=False),
)


@dataclass(slots=True)
class ThingKey(IdempotencyRecord):
    """What a service keeps of a key: the thing it made, and a lease, as billing does."""

    thing_id: str
    locked_until: datetime | None = None
    version: int = 1


class KeyTakenError(Exception):
    """The service's own error for a key another request holds."""


@pytest.fixture(params=["sqlite", "postgres"])
async def sessions(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with scratch_database(request.param, tmp_path, "idempotency") as url:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(things.insert(), [{"id": "t-1"}, {"id": "t-2"}])
        try:
            yield async_sessionmaker(engine, expire_on_commit=False)
        finally:
            await engine.dispose()


def store(session: AsyncSession) -> IdempotencyKeys[ThingKey]:
    return IdempotencyKeys(session, keys, ThingKey, taken=KeyTakenError)


def test_the_key_column_holds_every_key_the_rule_accepts() -> None:
    assert keys.c.key.type.length == IDEMPOTENCY_KEY_COLUMN_LENGTH  # type: ignore[attr-defined]
    assert IDEMPOTENCY_KEY_COLUMN_LENGTH >= IDEMPOTENCY_KEY_MAX_LENGTH
    assert [column.name for column in keys.primary_key] == ["key"]


async def test_a_key_is_stored_with_what_it_made_and_read_back_as_the_services_record(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = "k" * IDEMPOTENCY_KEY_COLUMN_LENGTH
    async with sessions() as session, session.begin():
        assert await store(session).get(key) is None
        await store(session).add(ThingKey(key, "f" * 64, "t-1", AT))

    async with sessions() as session:
        found = await store(session).get(key)

    assert found == ThingKey(key, "f" * 64, "t-1", AT, version=1)
    assert type(found) is ThingKey


async def test_of_two_requests_with_one_key_the_second_to_store_it_is_told_so(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as first, sessions() as second:
        await first.begin()
        await second.begin()
        assert await store(first).get("k-1") is None
        assert await store(second).get("k-1") is None
        await store(first).add(ThingKey("k-1", "a" * 64, "t-1"))
        await first.commit()

        with pytest.raises(KeyTakenError, match="k-1"):
            await store(second).add(ThingKey("k-1", "b" * 64, "t-2"))
        await second.rollback()

    async with sessions() as session:
        assert await store(session).get("k-1") == ThingKey("k-1", "a" * 64, "t-1")


async def test_a_record_is_saved_only_over_the_version_it_was_read_at(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        await store(session).add(ThingKey("k-1", "a" * 64, "t-1"))
    async with sessions() as session:
        mine = await store(session).get("k-1")
        theirs = await store(session).get("k-1")
    assert mine is not None
    assert theirs is not None

    theirs.locked_until = AT + timedelta(seconds=30)
    async with sessions() as session, session.begin():
        await store(session).save(theirs)
    mine.locked_until = AT + timedelta(seconds=60)
    async with sessions() as session, session.begin():
        with pytest.raises(KeyTakenError):
            await store(session).save(mine)

    async with sessions() as session:
        stored = await store(session).get("k-1")
    assert theirs.version == 2
    assert stored == ThingKey("k-1", "a" * 64, "t-1", AT + timedelta(seconds=30), version=2)
