"""At start-up, once subscribed: learn the catalog's products from its listing, retrying
until the catalog answers (it may start after order-history). See
``order_history.service_layer.catalog_listing`` for why."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Final

from chassis import get_logger
from order_history.service_layer.catalog_listing import learn_catalog

if TYPE_CHECKING:
    from chassis.messaging.lifecycle import Messaging
    from order_history.service_layer.ports import Catalog, UnitOfWorkFactory

FIRST_RETRY: Final = 0.5
LAST_RETRY: Final = 10.0

_log = get_logger("order_history.catalog_listing")


class CatalogListingReader:
    """Reads the catalog's listing once per start, in the background."""

    def __init__(
        self, catalog: Catalog, messaging: Messaging, uow_factory: UnitOfWorkFactory
    ) -> None:
        self._catalog = catalog
        self._messaging = messaging
        self._uow_factory = uow_factory
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="order-history-catalog-listing")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        await self._subscribed()
        delay = FIRST_RETRY
        while True:
            try:
                learnt = await learn_catalog(self._catalog, self._uow_factory)
            except Exception as error:  # noqa: BLE001 - the catalog may come up later
                _log.warning("could not read the catalog's listing; retrying", error=str(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
            else:
                _log.info("catalog listing read", new_products=learnt)
                return

    async def _subscribed(self) -> None:
        # Only what is published after subscribing is sure to come by the bus: read after.
        while True:
            with contextlib.suppress(RuntimeError):
                await self._messaging.check()
                return
            await asyncio.sleep(0.1)
