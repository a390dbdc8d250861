"""The background loop that settles unanswered claims with their providers, every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from billing.service_layer.handlers import reconcile_claims
from chassis import get_logger

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import timedelta

    from billing.service_layer.ports import PaymentProvider, UnitOfWorkFactory

_log = get_logger("billing.reconciliation")


class Reconciliation:
    """Runs ``reconcile_claims`` every ``interval`` seconds from start to stop."""

    def __init__(self, *, interval: float, settle_after: timedelta) -> None:
        self._interval = interval
        self._settle_after = settle_after
        self._task: asyncio.Task[None] | None = None

    def start(self, uow_factory: UnitOfWorkFactory, providers: Sequence[PaymentProvider]) -> None:
        self._task = asyncio.create_task(self._run(uow_factory, providers))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(
        self, uow_factory: UnitOfWorkFactory, providers: Sequence[PaymentProvider]
    ) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await reconcile_claims(uow_factory(), providers, settle_after=self._settle_after)
            except Exception:  # noqa: BLE001 - a round that fails is tried again next time
                _log.exception("reconciling unanswered payments failed")
