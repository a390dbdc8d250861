"""bff-mobile's settings: the chassis's, plus how long it waits on each part of a screen."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class BffMobileSettings(ServiceSettings):
    """The chassis's settings for bff-mobile, from BFF_MOBILE_* variables.

    Upstreams: ``catalog`` and ``orders`` (http URLs), and ``identity`` for the keys of the
    tokens it checks itself.
    """

    model_config = SettingsConfigDict(env_prefix="BFF_MOBILE_")

    service: str = "bff-mobile"
    port: int = 8011
    connect_timeout: float = Field(default=0.5, gt=0, description="Seconds to connect.")
    catalog_timeout: float = Field(default=1.0, gt=0, description="Seconds per catalog call.")
    orders_timeout: float = Field(default=1.5, gt=0, description="Seconds per orders call.")
    # A screen waits at most this long for any one of its parts, then shows it as degraded.
    part_timeout: float = Field(default=2.0, gt=0, description="Seconds per part of a screen.")
    featured_count: int = Field(default=6, ge=1, le=24, description="Products on the home.")
