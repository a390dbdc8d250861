"""Fixtures of the unit tests: the fakes of the ports (``fakes.py``), wired and filled."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from chassis.messaging import Delivery, Message

from .fakes import (
    FakeStore,
    FakeUnitOfWork,
)

if TYPE_CHECKING:
    from contracts.events import Event

AT = "2026-11-25T10:00:00+00:00"


def delivery_of(event: Event, *, key: str = "o-1", message_id: str | None = None) -> Delivery:
    """``event`` as the bus hands it to notifications."""
    message = Message(
        topic=event.topic,
        key=key,
        event_type=event.event_type,
        schema_version=event.schema_version,
        payload=event.to_json(),
        message_id=message_id or uuid.uuid4().hex,
    )
    return Delivery(message=message, group="notifications", partition=0)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def uow(store: FakeStore) -> FakeUnitOfWork:
    return FakeUnitOfWork(store)
