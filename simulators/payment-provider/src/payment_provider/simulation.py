"""Latency, random errors and outages, applied to every business call and changed at run time."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from chassis import ProblemError

if TYPE_CHECKING:
    from payment_provider.settings import ProviderSettings


class Simulation(BaseModel):
    """How badly the provider behaves right now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(
        default=0, ge=0, le=60_000, description="Delay added before every business call."
    )
    error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of business calls answered with a 503."
    )
    outage: bool = Field(default=False, description="Answer every business call with a 503.")

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> Simulation:
        return cls(
            latency_ms=settings.latency_ms, error_rate=settings.error_rate, outage=settings.outage
        )


async def simulated_conditions(request: Request) -> None:
    """A dependency of every business route: wait, then perhaps fail as configured."""
    simulation: Simulation = request.app.state.simulation
    if simulation.latency_ms:
        await asyncio.sleep(simulation.latency_ms / 1000)
    # A simulated fault, not a security decision: the standard generator is the right tool.
    if simulation.outage or random.random() < simulation.error_rate:  # noqa: S311
        raise ProblemError(
            503,
            "provider-unavailable",
            "Provider unavailable",
            "The provider is in a simulated outage." if simulation.outage else "Simulated error.",
            headers={"Retry-After": "1"},
        )
