"""Notifications reads its settings from NOTIFICATIONS_* variables."""

from __future__ import annotations

import pytest

from notifications.settings import NotificationsSettings


def test_notifications_listens_on_8005_and_names_itself_notifications_by_default() -> None:
    settings = NotificationsSettings()

    assert (settings.service, settings.port) == ("notifications", 8005)


def test_the_port_and_the_broker_come_from_notifications_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFICATIONS_PORT", "9005")
    monkeypatch.setenv("NOTIFICATIONS_BROKER_URL", "nats://127.0.0.1:4222")

    settings = NotificationsSettings()

    assert (settings.port, settings.broker_url_or_default()) == (9005, "nats://127.0.0.1:4222")
