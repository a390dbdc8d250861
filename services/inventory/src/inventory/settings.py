"""The inventory's settings: the chassis's, plus its own, from INVENTORY_* variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class InventorySettings(ServiceSettings):
    """The chassis's settings for the inventory, its gRPC port, demo stock and expiry sweep."""

    model_config = SettingsConfigDict(env_prefix="INVENTORY_")

    service: str = "inventory"
    port: int = 8002
    grpc_port: int | None = Field(default=9002, ge=0, le=65535)
    seed_demo_stock: bool = True
    expiry_interval_seconds: float = Field(default=5.0, gt=0)
