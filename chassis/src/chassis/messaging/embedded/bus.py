"""The embedded bus: publishes into the broker file and runs its subscriptions.

Each bus drives the file from two threads of its own: one publishes and consumes, the other
only renews the leases, so a heartbeat never queues behind a publish that waits for the lock.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
import uuid
import weakref
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from chassis.logs import get_logger
from chassis.messaging.bus import (
    DEFAULT_PARTITIONS,
    BrokerUnavailableError,
    DeadLetterSink,
    Handler,
    SubscribeOptions,
)
from chassis.messaging.embedded.file import DATABASE, BrokerFile, BrokerFileGoneError, Member
from chassis.messaging.embedded.leases import DEFAULT_LEASE, Leases
from chassis.messaging.embedded.subscription import EmbeddedSubscription, cancel
from chassis.messaging.message import check_name, partition_for

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from chassis.messaging.message import Message

_log = get_logger("chassis.messaging.embedded")

_P = ParamSpec("_P")
_T = TypeVar("_T")

DEFAULT_RETENTION = 7 * 24 * 3600.0
SWEEP_EVERY = 600.0

# The buses of this process, by database file: a publish nudges the local subscriptions
# at once instead of leaving them to find the message at their next poll.
_neighbours: defaultdict[Path, weakref.WeakSet[EmbeddedBus]] = defaultdict(weakref.WeakSet)


class EmbeddedBus:
    """The message bus on a directory of the local disk; see the module docstring."""

    def __init__(
        self,
        directory: str | Path,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        namespace: str = "souk",
        lease: float = DEFAULT_LEASE,
        retention: float = DEFAULT_RETENTION,
    ) -> None:
        if partitions < 1 or lease <= 0 or retention < 0:
            raise ValueError("partitions must be >= 1, lease > 0 and retention >= 0")
        self.partitions = partitions
        self.namespace = namespace
        self.path = Path(directory).absolute() / DATABASE
        self.lease = lease
        self.retention = retention
        self._opened: tuple[BrokerFile, Leases] | None = None
        self._gone: list[tuple[BrokerFile, Leases]] = []
        """Files replaced under the bus, closed with it (their last users may still be busy)."""
        self._thread: ThreadPoolExecutor | None = None
        self._heart: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: set[EmbeddedSubscription] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._reopening = asyncio.Lock()
        self._closed = False

    async def start(self) -> None:
        """Open (creating if need be) the broker file; BrokerUnavailableError if it cannot."""
        if self._opened is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="souk-embedded-bus")
        self._heart = ThreadPoolExecutor(1, thread_name_prefix="souk-embedded-heartbeat")
        try:
            self._opened = await self._open()
        except Exception as error:
            self._thread.shutdown(wait=False)
            self._heart.shutdown(wait=False)
            self._thread = self._heart = None
            if isinstance(error, OSError | sqlite3.Error):
                raise BrokerUnavailableError(f"embedded broker at {self.path}: {error}") from error
            raise
        _neighbours[self.path].add(self)
        self._sweeper = asyncio.create_task(self._sweep_now_and_then())

    async def close(self, grace: float = 10.0) -> None:
        """Stop every subscription (see :meth:`EmbeddedSubscription.stop`) and close the file."""
        if self._closed:
            return
        self._closed = True
        await cancel(self._sweeper)
        await asyncio.gather(*(s.stop(grace) for s in list(self._subscriptions)))
        _neighbours[self.path].discard(self)
        if self._opened is not None:
            self._gone.append(self._opened)
        for file, leases in self._gone:
            await self._run(file.close)
            await self._beat(leases.close)
        if self._thread is not None and self._heart is not None:
            self._thread.shutdown(wait=False)
            self._heart.shutdown(wait=False)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Append ``messages`` to the log; return once they are on the disk, in order."""
        if not messages:
            return
        file, _ = self.opened()
        entries = [
            (
                check_name("topic", m.topic),
                partition_for(m.key, self.partitions),
                json.dumps(m.headers()),
                m.payload,
            )
            for m in messages
        ]
        try:
            await self._run(file.publish, entries)
        except BrokerFileGoneError as error:
            try:
                await self.reopen(file)
            except Exception as reopening:  # noqa: BLE001 - the next publish tries again
                _log.error("could not reopen the broker file", error=str(reopening))
            raise BrokerUnavailableError(f"embedded broker: {error}") from error
        except sqlite3.Error as error:
            raise BrokerUnavailableError(f"embedded broker at {self.path}: {error}") from error
        topics = {m.topic for m in messages}
        for bus in list(_neighbours[self.path]):
            bus._nudge(self.namespace, topics)

    async def subscribe(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions = SubscribeOptions(),  # noqa: B008 - frozen, so safe to share
    ) -> EmbeddedSubscription:
        """Join ``group`` on ``topic`` (registering the group at the end of the log if new)."""
        file, leases = self.opened()
        member = Member(check_name("topic", topic), check_name("group", group), uuid.uuid4().hex)
        subscription = EmbeddedSubscription(
            self, file, leases, member, handler=handler, dead_letters=dead_letters, options=options
        )
        try:
            await self._run(file.join, member)
            await subscription.begin()
        except sqlite3.Error as error:
            await subscription.stop(0)
            raise BrokerUnavailableError(f"embedded broker at {self.path}: {error}") from error
        self._subscriptions.add(subscription)
        return subscription

    async def sweep(self) -> int:
        """Apply retention now; return how many messages were deleted."""
        file, _ = self.opened()
        return await self._run(file.sweep, time.time() - self.retention)

    async def reopen(self, gone: BrokerFile) -> None:
        """Open the file now at the path, if ``gone`` (deleted or replaced) is still in use."""
        async with self._reopening:
            if self._opened is None or self._opened[0] is not gone or self._closed:
                return
            _log.error(
                "the embedded broker file was deleted or replaced; opening the new one"
                " (what the old one held is lost)",
                path=str(self.path),
            )
            opened = await self._open()
            self._gone.append(self._opened)
            self._opened = opened

    def opened(self) -> tuple[BrokerFile, Leases]:
        """The broker file in use and its heartbeats; RuntimeError if not started, or closed."""
        if self._opened is None or self._closed:
            raise RuntimeError("the embedded bus is not started, or already closed")
        return self._opened

    async def _open(self) -> tuple[BrokerFile, Leases]:
        file = await self._run(BrokerFile, self.path, self.namespace, self.partitions, self.lease)
        try:
            leases = await self._beat(
                Leases, self.path, self.namespace, self.partitions, self.lease
            )
        except BaseException:
            await self._run(file.close)
            raise
        return file, leases

    async def _run(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``call`` on this bus's own thread, where its SQLite connections live."""
        return await self._on(self._thread, functools.partial(call, *args, **kwargs))

    async def _beat(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``call`` on this bus's heartbeat thread, where the connection of Leases lives."""
        return await self._on(self._heart, functools.partial(call, *args, **kwargs))

    @staticmethod
    async def _on(thread: ThreadPoolExecutor | None, call: Callable[[], _T]) -> _T:
        if thread is None:
            raise RuntimeError("the embedded bus is not started")
        return await asyncio.get_running_loop().run_in_executor(thread, call)

    def _nudge(self, namespace: str, topics: set[str]) -> None:
        if namespace != self.namespace or self._loop is not asyncio.get_running_loop():
            return
        for subscription in self._subscriptions:
            if subscription.member.topic in topics:
                subscription.nudge()

    def _forget(self, subscription: EmbeddedSubscription) -> None:
        self._subscriptions.discard(subscription)

    async def _sweep_now_and_then(self) -> None:
        while True:
            try:
                deleted = await self.sweep()
            except Exception as error:  # noqa: BLE001 - the next sweep tries again
                _log.warning("retention sweep failed", path=str(self.path), error=repr(error))
            else:
                if deleted:
                    _log.info("retention sweep", path=str(self.path), deleted=deleted)
            await asyncio.sleep(SWEEP_EVERY)
