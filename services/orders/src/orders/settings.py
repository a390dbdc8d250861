"""The orders' settings: the chassis's, plus its own, from ORDERS_* variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings
from contracts import Money
from contracts.events.orders import DELIVERY_OPTIONS
from contracts.money import Currency


class OrdersSettings(ServiceSettings):
    """The chassis's settings for orders, and how the checkout talks to the others.

    Upstreams: ``catalog`` and ``billing`` (http URLs), ``inventory`` (grpc URLs), and
    ``identity``, which gives orders the token it calls billing and inventory with.
    """

    model_config = SettingsConfigDict(env_prefix="ORDERS_")

    service: str = "orders"
    port: int = 8004
    connect_timeout: float = Field(default=1.0, gt=0, description="Seconds to connect.")
    catalog_timeout: float = Field(default=2.0, gt=0, description="Seconds per catalog call.")
    inventory_timeout: float = Field(default=2.0, gt=0, description="Seconds per inventory call.")
    # Billing may try a second payment provider after the first times out.
    billing_timeout: float = Field(default=10.0, gt=0, description="Seconds per billing call.")
    retry_attempts: int = Field(default=4, ge=1, le=10, description="Tries per step and drive.")
    retry_base_delay: float = Field(default=0.2, ge=0, description="First backoff, seconds.")
    retry_max_delay: float = Field(default=2.0, ge=0, description="Longest backoff, seconds.")
    client_id: str = Field(default="orders", description="Orders' client at identity.")
    # None: orders calls billing and inventory without a token (only where they check none).
    client_secret: SecretStr | None = None
    reservation_ttl_seconds: int = Field(default=900, ge=1, le=86_400)
    checkout_concurrency: int = Field(
        default=8, ge=1, description="Saga commands handled at once (of different orders)."
    )
    step_handler_timeout: float = Field(
        default=60.0, gt=0, description="Seconds one attempt at a step may take, retries included."
    )
    # What each delivery option costs, in minor units of delivery_currency: orders owns the
    # delivery (ADR 0026), prices it as an order is placed and adds it to the order's total.
    delivery_prices: dict[str, int] = Field(
        default={"standard": 0, "express": 990},
        description="Price of each delivery option (standard, express), in minor units.",
    )
    delivery_currency: str = Field(default="EUR", description="The delivery prices' currency.")

    @field_validator("delivery_prices")
    @classmethod
    def _every_option_priced(cls, value: dict[str, int]) -> dict[str, int]:
        if sorted(value) != sorted(DELIVERY_OPTIONS):
            raise ValueError(f"price exactly the options {', '.join(DELIVERY_OPTIONS)}")
        if any(amount < 0 for amount in value.values()):
            raise ValueError("a delivery price is not negative")
        return value

    @field_validator("delivery_currency")
    @classmethod
    def _a_known_currency(cls, value: str) -> str:
        return str(Currency(value))

    def delivery_price(self, option: str) -> Money:
        """What delivering by ``option`` costs."""
        return Money(self.delivery_prices[option], self.delivery_currency)
