"""Order-history's settings: the chassis's, from ORDER_HISTORY_* variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class OrderHistorySettings(ServiceSettings):
    """The chassis's settings for order-history; ``broker_url`` names the bus it listens to."""

    model_config = SettingsConfigDict(env_prefix="ORDER_HISTORY_")

    service: str = "order-history"
    port: int = 8007
