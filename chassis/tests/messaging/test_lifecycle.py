"""A service's messaging through ``create_app``: outbox relayed, consumers run, dead letters
kept, listed and replayed over the internal routes that `souk dlq` uses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from chassis import ServiceSettings
from chassis.messaging import Delivery, Message, SubscribeOptions
from chassis.messaging.lifecycle import Consumer, Messaging
from chassis.unit_of_work import SqlAlchemyUnitOfWork

from .recording import eventually

Running = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]

_MESSAGING_REVISION = '''\
"""The chassis's messaging tables."""
from alembic import op

from chassis.messaging.tables import create_messaging_tables_v1, drop_messaging_tables_v1

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    create_messaging_tables_v1(op)


def downgrade():
    drop_messaging_tables_v1(op)
'''


class GreeterUnitOfWork(SqlAlchemyUnitOfWork):
    def open_repositories(self, session: AsyncSession) -> None:
        del session


class Greeter:
    """A consumer that refuses messages saying ``poison`` until it is ``cured``."""

    def __init__(self) -> None:
        self.greeted: list[str] = []
        self.cured = False

    async def __call__(self, delivery: Delivery) -> None:
        text = delivery.message.payload.decode()
        if text == "poison" and not self.cured:
            raise ValueError("cannot greet poison")
        self.greeted.append(text)


@pytest.fixture
def greeter_app(
    tmp_path: Path, migrations: Path, make_app: Callable[..., FastAPI]
) -> tuple[FastAPI, Greeter]:
    (migrations / "versions" / "0002_messaging.py").write_text(_MESSAGING_REVISION)
    settings = ServiceSettings(
        service="greeter",
        instance="greeter-1",
        data_dir=tmp_path / "data",
        broker_url=f"embedded://{tmp_path / 'broker'}",
    )
    greeter = Greeter()
    options = SubscribeOptions(max_attempts=2, retry_delay=0.01)
    messaging = Messaging(settings, [Consumer("greetings", greeter, options)])
    app = make_app(settings=settings, migrations=migrations, messaging=messaging)
    return app, greeter


async def publish(app: FastAPI, *texts: str) -> None:
    async with GreeterUnitOfWork(app.state.database.sessionmaker) as uow:
        for text in texts:
            uow.outbox.add(
                Message(topic="greetings", key="ada", event_type="Greeted", payload=text.encode())
            )
        await uow.commit()


async def dead_letters(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/internal/dead-letters", params=params)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_events_go_out_through_the_outbox_and_come_back_to_the_consumer(
    greeter_app: tuple[FastAPI, Greeter], running: Running
) -> None:
    app, greeter = greeter_app
    async with running(app) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready)
        await publish(app, "hello", "salaam")

        async def both_greeted() -> bool:
            return greeter.greeted == ["hello", "salaam"]

        await eventually(both_greeted)


async def test_a_message_that_keeps_failing_is_kept_shown_and_replayed(
    greeter_app: tuple[FastAPI, Greeter], running: Running
) -> None:
    app, greeter = greeter_app
    async with running(app) as client:
        await publish(app, "poison", "hello")

        async def one_dead_letter() -> bool:
            return len(await dead_letters(client)) == 1 and greeter.greeted == ["hello"]

        await eventually(one_dead_letter)
        [letter] = await dead_letters(client)
        assert letter["topic"] == "greetings"
        assert letter["group"] == "greeter"
        assert letter["attempts"] == 2
        assert letter["error"] == "ValueError: cannot greet poison"
        shown = (await client.get(f"/internal/dead-letters/{letter['id']}")).json()
        assert shown["payload"] == "poison"
        assert shown["headers"]["souk-event-type"] == "Greeted"

        still_failing = await client.post(f"/internal/dead-letters/{letter['id']}/replay")
        assert still_failing.status_code == 422
        assert still_failing.json()["detail"] == "ValueError: cannot greet poison"

        greeter.cured = True
        replayed = await client.post(f"/internal/dead-letters/{letter['id']}/replay")
        assert replayed.status_code == 200
        assert greeter.greeted == ["hello", "poison"]
        assert await dead_letters(client) == []
        [kept] = await dead_letters(client, include_replayed="true")
        assert kept["replayed_at"] is not None
        assert kept["attempts"] == 3  # the failed replay counted

        again = await client.post(f"/internal/dead-letters/{letter['id']}/replay")
        assert again.status_code == 409
        assert again.json()["type"].endswith("/already-replayed")
        missing = await client.get("/internal/dead-letters/999")
        assert missing.status_code == 404


async def test_messaging_without_a_database_is_refused(
    tmp_path: Path, make_app: Callable[..., FastAPI]
) -> None:
    settings = ServiceSettings(service="greeter", data_dir=tmp_path)
    with pytest.raises(ValueError, match="database"):
        make_app(settings=settings, messaging=Messaging(settings))
