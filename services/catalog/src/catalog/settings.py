"""The catalog's settings: the chassis's, plus its own, from CATALOG_* variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class CatalogSettings(ServiceSettings):
    """The chassis's settings for the catalog, and whether to seed the demo catalog."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_")

    service: str = "catalog"
    port: int = 8001
    seed_demo_data: bool = True
