"""Orders reads its settings from ORDERS_* variables."""

from __future__ import annotations

import pytest

from contracts import Money
from orders.settings import OrdersSettings


def test_orders_listens_on_8004_and_names_itself_orders_by_default() -> None:
    settings = OrdersSettings()

    assert (settings.service, settings.port) == ("orders", 8004)
    assert settings.reservation_ttl_seconds == 900


def test_addresses_timeouts_and_retries_come_from_orders_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "ORDERS_UPSTREAMS",
        '{"catalog": ["http://127.0.0.1:8001"], "inventory": ["grpc://127.0.0.1:9002"],'
        ' "billing": ["http://127.0.0.1:8003"]}',
    )
    monkeypatch.setenv("ORDERS_BILLING_TIMEOUT", "4.5")
    monkeypatch.setenv("ORDERS_RETRY_ATTEMPTS", "6")

    settings = OrdersSettings()

    assert settings.upstream("inventory") == ["grpc://127.0.0.1:9002"]
    assert (settings.billing_timeout, settings.retry_attempts) == (4.5, 6)


@pytest.mark.parametrize(
    "variable",
    ["ORDERS_RETRY_ATTEMPTS=0", "ORDERS_CATALOG_TIMEOUT=0", "ORDERS_STEP_HANDLER_TIMEOUT=0"],
)
def test_settings_that_would_stop_the_checkout_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    name, value = variable.split("=")
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=name.removeprefix("ORDERS_").lower()):
        OrdersSettings()


def test_delivery_is_priced_from_orders_variables_standard_free_and_express_not_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = OrdersSettings()
    assert default.delivery_price("standard") == Money(0, "EUR")
    assert default.delivery_price("express").amount > 0

    monkeypatch.setenv("ORDERS_DELIVERY_PRICES", '{"standard": 250, "express": 1500}')
    monkeypatch.setenv("ORDERS_DELIVERY_CURRENCY", "MAD")

    assert OrdersSettings().delivery_price("express") == Money(1500, "MAD")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORDERS_DELIVERY_PRICES", '{"standard": 0}'),
        ("ORDERS_DELIVERY_PRICES", '{"standard": 0, "express": 990, "drone": 5000}'),
        ("ORDERS_DELIVERY_PRICES", '{"standard": -1, "express": 990}'),
        ("ORDERS_DELIVERY_CURRENCY", "XXX"),
    ],
)
def test_delivery_prices_that_leave_an_option_unpriced_or_cannot_be_charged_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValueError, match=r"delivery|currency"):
        OrdersSettings()
