"""A service's messaging through ``create_app``: outbox relayed, consumers run, dead letters
kept, listed and replayed over the internal routes that `souk dlq` uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from chassis import ServiceSettings
from chassis.messaging import (
    BrokerUnavailableError,
    Delivery,
    Message,
    SubscribeOptions,
    Subscription,
    connect,
)
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


async def test_two_replays_of_one_dead_letter_at_once_run_the_handler_once(
    greeter_app: tuple[FastAPI, Greeter], running: Running
) -> None:
    app, greeter = greeter_app
    async with running(app) as client:
        await publish(app, "poison")

        async def buried() -> bool:
            return len(await dead_letters(client)) == 1

        await eventually(buried)
        [letter] = await dead_letters(client)
        greeter.cured = True

        first, second = await asyncio.gather(
            client.post(f"/internal/dead-letters/{letter['id']}/replay"),
            client.post(f"/internal/dead-letters/{letter['id']}/replay"),
        )

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    assert greeter.greeted == ["poison"]


class BrokerThatRefusesTheFirstSubscription:
    """Wraps a real bus; the first ``subscribe`` fails as a broker going away would."""

    refused = 0

    def __init__(self, url: str) -> None:
        self._bus = connect(url)
        self.partitions = self._bus.partitions

    async def start(self) -> None:
        await self._bus.start()

    async def close(self, grace: float = 10.0) -> None:
        await self._bus.close(grace)

    async def publish(self, messages: Sequence[Message]) -> None:
        await self._bus.publish(messages)

    async def subscribe(self, *args: Any, **kwargs: Any) -> Subscription:
        if BrokerThatRefusesTheFirstSubscription.refused == 0:
            BrokerThatRefusesTheFirstSubscription.refused += 1
            raise BrokerUnavailableError("the broker went away")
        return await self._bus.subscribe(*args, **kwargs)


async def test_a_subscription_refused_at_start_up_is_tried_again_until_ready(
    greeter_app: tuple[FastAPI, Greeter], running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chassis.messaging import lifecycle  # noqa: PLC0415

    monkeypatch.setattr(lifecycle, "connect", BrokerThatRefusesTheFirstSubscription)
    app, greeter = greeter_app
    async with running(app) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready)
        await publish(app, "hello")

        async def greeted() -> bool:
            return greeter.greeted == ["hello"]

        await eventually(greeted)
    assert BrokerThatRefusesTheFirstSubscription.refused == 1


async def test_shutdown_completes_while_the_broker_was_never_reached(
    tmp_path: Path, migrations: Path, make_app: Callable[..., FastAPI], running: Running
) -> None:
    (migrations / "versions" / "0002_messaging.py").write_text(_MESSAGING_REVISION)
    settings = ServiceSettings(
        service="greeter",
        data_dir=tmp_path / "data",
        broker_url="embedded:///proc/souk-cannot-create-this",
    )
    messaging = Messaging(settings, [Consumer("greetings", Greeter())])
    app = make_app(settings=settings, migrations=migrations, messaging=messaging)

    async with running(app) as client:
        readiness = await client.get("/readyz")

    assert readiness.status_code == 503
    assert "not yet subscribed" in readiness.text
