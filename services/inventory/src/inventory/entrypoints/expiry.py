"""The expiry sweep: a timer that releases reservations nobody came back for."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chassis import get_logger
from inventory.domain.commands import ExpireReservations
from inventory.service_layer.handlers import expire_reservations

if TYPE_CHECKING:
    from inventory.service_layer.ports import Clock, UnitOfWorkFactory

_log = get_logger("inventory.expiry")


async def expire_reservations_every(
    seconds: float, uow_factory: UnitOfWorkFactory, clock: Clock
) -> None:
    """Every ``seconds``, expire overdue reservations, until cancelled.

    Every replica sweeps; a reservation expires once, whichever sweep comes first.
    """
    command = ExpireReservations()
    while True:
        await asyncio.sleep(seconds)
        try:
            expired = await expire_reservations(command, uow_factory(), clock)
        except Exception as error:  # noqa: BLE001 - a failed sweep is logged; the next may work
            _log.warning("expiry sweep failed", error=f"{type(error).__name__}: {error}")
            continue
        if expired:
            _log.info("reservations expired", count=expired)
