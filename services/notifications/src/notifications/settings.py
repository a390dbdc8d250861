"""Notifications' settings: the chassis's, from NOTIFICATIONS_* variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class NotificationsSettings(ServiceSettings):
    """The chassis's settings for notifications; ``broker_url`` names the bus it listens to."""

    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_")

    service: str = "notifications"
    port: int = 8005
