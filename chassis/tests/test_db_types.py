"""UTCDateTime: a moment goes into the database and comes back the same, aware, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from chassis import Database
from chassis.db import UTCDateTime
from souk.testing import scratch_database

metadata = MetaData()
moments = Table(
    "moments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=True),
)

TEHRAN = timezone(timedelta(hours=3, minutes=30))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_moment_reads_back_aware_in_utc_whatever_zone_it_was_written_in(
    backend: str, tmp_path: Path
) -> None:
    written = [
        datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 16, 0, tzinfo=TEHRAN),  # the same moment, elsewhere
        None,
    ]
    async with scratch_database(backend, tmp_path, "utc-datetime") as url:
        database = Database(url)
        try:
            async with database.engine.begin() as connection:
                await connection.run_sync(metadata.create_all)
                await connection.execute(insert(moments), [{"at": at} for at in written])
                read = list(
                    (await connection.scalars(select(moments.c.at).order_by(moments.c.id))).all()
                )
                later = (
                    await connection.scalars(
                        select(moments.c.id).where(
                            moments.c.at > datetime(2026, 3, 1, 15, 0, tzinfo=TEHRAN)
                        )
                    )
                ).all()
        finally:
            await database.dispose()

    assert read == [written[0], written[0], None]
    assert all(at is None or at.utcoffset() == timedelta(0) for at in read)
    assert sorted(later) == [1, 2]  # compared as moments, not as wall-clock times
