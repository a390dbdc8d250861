"""Order-history reads its settings from ORDER_HISTORY_* variables."""

from __future__ import annotations

import pytest

from order_history.settings import OrderHistorySettings


def test_order_history_listens_on_8007_and_names_itself_order_history_by_default() -> None:
    settings = OrderHistorySettings()

    assert (settings.service, settings.port) == ("order-history", 8007)


def test_the_port_and_the_broker_come_from_order_history_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_HISTORY_PORT", "9007")
    monkeypatch.setenv("ORDER_HISTORY_BROKER_URL", "nats://127.0.0.1:4222")

    settings = OrderHistorySettings()

    assert (settings.port, settings.broker_url_or_default()) == (9007, "nats://127.0.0.1:4222")
