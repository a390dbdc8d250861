"""The simulator's settings: the chassis's, plus the behaviour it starts with."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class ProviderSettings(ServiceSettings):
    """One simulated provider; ``latency_ms``, ``error_rate`` and ``outage`` can be changed later.

    The same module runs as several services, so the prefix is usually the service's own
    (``PAYMENT_PRIMARY_``), chosen with :meth:`ServiceSettings.for_service`.
    """

    model_config = SettingsConfigDict(env_prefix="PAYMENT_PROVIDER_")

    service: str = "payment-provider"
    port: int = 8090
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    outage: bool = False
