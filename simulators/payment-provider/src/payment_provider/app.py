"""Composition root: the simulated processor and its run-time controls on the chassis."""

from __future__ import annotations

from typing import TYPE_CHECKING

import chassis
from payment_provider.problems import processor_problem
from payment_provider.processor import CardProcessor, ProcessorError
from payment_provider.routes import payments, simulation
from payment_provider.simulation import Simulation

if TYPE_CHECKING:
    from fastapi import FastAPI

    from payment_provider.settings import ProviderSettings


def create_app(settings: ProviderSettings) -> FastAPI:
    """A payment provider simulator; its books live only as long as the process."""
    app = chassis.create_app(
        settings,
        title=f"Souk payment provider simulator ({settings.service})",
        description=(
            "A stand-in for an external card processor: authorize, capture, void and refund, "
            "with latency, errors and outages set at run time under /v1/simulation."
        ),
        routers=[payments, simulation],
    )
    app.state.processor = CardProcessor()
    app.state.simulation = Simulation.from_settings(settings)
    app.add_exception_handler(ProcessorError, processor_problem)
    return app
