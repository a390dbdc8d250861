"""The embedded broker: one SQLite file in a directory, shared by the local processes.

``souk up`` needs a broker that is durable, shared by several service processes on one
machine, survives ``souk down``/``souk up`` and asks for no server. A SQLite database in WAL
mode is all of that: every process opens the same file, writers take turns under SQLite's
lock (``BEGIN IMMEDIATE``, with a busy timeout), readers never wait, and a committed
transaction survives the process (and, for a publish, a power cut). Each bus drives the
file from one thread of its own, with the stdlib ``sqlite3``: every call is one short
transaction, so one thread per bus is enough and keeps each connection in the thread that
made it (aiosqlite would be the same thread with more layers).

What the file holds (every row belongs to a namespace, the URL's ``namespace``):

- ``log``: the messages, by (topic, partition, offset); offsets of a partition are gapless
  and increasing, counted in ``ends`` and assigned in the publishing transaction;
- ``offsets``: per group and partition, the last offset handled (``committed``) and how
  often the next message was handed to a handler (``delivered``), which seeds ``attempt``
  so a consumer that died mid-handler makes the next delivery attempt 2;
- ``consumers`` and ``leases``: the live consumers of a group (a heartbeat row) and which of
  them owns each partition, until when; ``groups.generation`` changes when a consumer joins,
  leaves or gives up a partition, so the others rebalance at once instead of at their next
  heartbeat.

A subscription is one consumer of its group. Its watcher renews its heartbeat and leases
every third of the lease time, takes free or expired partitions up to its fair share
(``ceil(partitions / live consumers)``) and gives up those beyond it, each at a message
boundary, so a partition never has two handlers. A consumer killed with SIGKILL stops
renewing, and its partitions are taken over once its lease expires. Each owned partition is
worked one message at a time: claim the next message after ``committed`` (counting the
delivery), run :func:`dispatch`, commit the offset, in a transaction that also checks the
lease is still ours and only moves the offset forwards, so a consumer that lost its lease
never moves its successor's offset.

Nothing pushes: the watcher polls, a few milliseconds after activity and backing off to a
quarter of a second when idle (one indexed read per subscription), so an idle system costs
almost no CPU. Publishing through a bus also nudges the subscriptions of every bus of this
process on the same directory. Retention deletes the messages every group of their topic has
passed once they are older than ``retention``, so the file stops growing.

Limits: leases run on the wall clock of the machine; a handler that blocks the event loop
for longer than the lease loses its partitions to another consumer (its commit is refused,
and the message is handled again: at-least-once); a namespace keeps the number of
partitions it was created with (a bus asking for another number fails to start).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import sqlite3
import time
import uuid
import weakref
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from chassis.messaging.dispatch import dispatch
from chassis.messaging.message import Delivery, Message, check_name, partition_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

_log = get_logger("chassis.messaging.embedded")

_P = ParamSpec("_P")
_T = TypeVar("_T")

DATABASE = "bus.sqlite3"
DEFAULT_LEASE = 3.0
DEFAULT_RETENTION = 7 * 24 * 3600.0
BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another process's transaction before the broker counts as down."""
FASTEST_POLL = 0.005
SLOWEST_POLL = 0.25
SWEEP_EVERY = 600.0
RETRY_AFTER_ERROR = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (
    namespace TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ends (
    namespace TEXT, topic TEXT, partition INTEGER,
    last_offset INTEGER NOT NULL,
    PRIMARY KEY (namespace, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log (
    namespace TEXT, topic TEXT, partition INTEGER, offset INTEGER,
    published REAL NOT NULL,
    headers TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (namespace, topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS groups (
    namespace TEXT, topic TEXT, group_name TEXT,
    generation INTEGER NOT NULL,
    PRIMARY KEY (namespace, topic, group_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (
    namespace TEXT, topic TEXT, group_name TEXT, partition INTEGER,
    committed INTEGER NOT NULL,
    delivered INTEGER NOT NULL,
    PRIMARY KEY (namespace, topic, group_name, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers (
    namespace TEXT, topic TEXT, group_name TEXT, consumer TEXT,
    expires REAL NOT NULL,
    PRIMARY KEY (namespace, topic, group_name, consumer)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    namespace TEXT, topic TEXT, group_name TEXT, partition INTEGER,
    consumer TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (namespace, topic, group_name, partition)
) WITHOUT ROWID;
"""


class LeaseLostError(Exception):
    """Another consumer of the group owns the partition now."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The next message of a partition, handed out for the ``delivered``-th time."""

    offset: int
    delivered: int
    message: Message


@dataclass(frozen=True, slots=True)
class Turn:
    """What a consumer holds after renewing its heartbeat and leases, and its fair share."""

    generation: int
    held: frozenset[int]
    fair_share: int


@dataclass(frozen=True, slots=True)
class Member:
    """Who is asking: one consumer of ``group`` on ``topic``."""

    topic: str
    group: str
    consumer: str


class BrokerFile:
    """The SQLite file, used from one thread only (the bus's own).

    Two connections: publishing waits for the disk (``synchronous=FULL``), because a published
    message must survive a power cut; the consumers' bookkeeping does not (``NORMAL``: a lost
    commit only means a message is delivered again).
    """

    def __init__(self, path: Path, namespace: str, partitions: int, lease: float) -> None:
        self.namespace = namespace
        self.partitions = partitions
        self.lease = lease
        path.parent.mkdir(parents=True, exist_ok=True)
        self._publishing = self._connect(path, "FULL")
        self._consuming = self._connect(path, "NORMAL")
        with self._writing(self._consuming) as db:
            for statement in _SCHEMA.split(";"):
                db.execute(statement)
            db.execute("INSERT OR IGNORE INTO namespaces VALUES (?, ?)", (namespace, partitions))
            (stored,) = db.execute(
                "SELECT partitions FROM namespaces WHERE namespace = ?", (namespace,)
            ).fetchone()
        if stored != partitions:
            self.close()
            raise ValueError(
                f"the embedded broker at {path.parent} cuts the topics of namespace "
                f"{namespace!r} into {stored} partitions, not {partitions}"
            )

    @staticmethod
    def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        return db

    @staticmethod
    @contextlib.contextmanager
    def _writing(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: two writers never both read then collide.
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close both connections."""
        self._publishing.close()
        self._consuming.close()

    def publish(self, entries: Sequence[tuple[str, int, str, bytes]]) -> None:
        """Append ``(topic, partition, headers, payload)`` entries in one durable transaction."""
        now = time.time()
        with self._writing(self._publishing) as db:
            for topic, partition, headers, payload in entries:
                (offset,) = db.execute(
                    "INSERT INTO ends VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
                    " SET last_offset = last_offset + 1 RETURNING last_offset",
                    (self.namespace, topic, partition),
                ).fetchone()
                db.execute(
                    "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.namespace, topic, partition, offset, now, headers, payload),
                )

    def join(self, member: Member) -> None:
        """Register the group at the current end of the log (if new) and the consumer in it."""
        ns, topic, group = self.namespace, member.topic, member.group
        with self._writing(self._consuming) as db:
            db.executemany(
                "INSERT OR IGNORE INTO offsets VALUES (?, ?, ?, ?, coalesce((SELECT last_offset"
                " FROM ends WHERE namespace = ? AND topic = ? AND partition = ?), 0), 0)",
                [(ns, topic, group, p, ns, topic, p) for p in range(self.partitions)],
            )
            db.execute(
                "INSERT INTO consumers VALUES (?, ?, ?, ?, ?)",
                (ns, topic, group, member.consumer, time.time() + self.lease),
            )
            self._new_generation(db, member)

    def leave(self, member: Member) -> None:
        """Give up every partition and leave the group."""
        key = (self.namespace, member.topic, member.group, member.consumer)
        with self._writing(self._consuming) as db:
            db.execute(
                "DELETE FROM leases WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND consumer = ?",
                key,
            )
            db.execute(
                "DELETE FROM consumers WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND consumer = ?",
                key,
            )
            self._new_generation(db, member)

    def take_turn(self, member: Member) -> Turn:
        """Renew the heartbeat and the leases; take free partitions up to the fair share."""
        now = time.time()
        group = (self.namespace, member.topic, member.group)
        mine = (*group, member.consumer)
        with self._writing(self._consuming) as db:
            db.execute(
                "INSERT INTO consumers VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET expires = excluded.expires",
                (*mine, now + self.lease),
            )
            db.execute(
                "DELETE FROM consumers WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND expires <= ?",
                (*group, now),
            )
            (live,) = db.execute(
                "SELECT count(*) FROM consumers WHERE namespace = ? AND topic = ?"
                " AND group_name = ?",
                group,
            ).fetchone()
            fair_share = math.ceil(self.partitions / live)
            db.execute(
                "UPDATE leases SET expires = ? WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND consumer = ?",
                (now + self.lease, *mine),
            )
            held = {
                p
                for (p,) in db.execute(
                    "SELECT partition FROM leases WHERE namespace = ? AND topic = ?"
                    " AND group_name = ? AND consumer = ?",
                    mine,
                )
            }
            if len(held) < fair_share:
                taken = {
                    p
                    for (p,) in db.execute(
                        "SELECT partition FROM leases WHERE namespace = ? AND topic = ?"
                        " AND group_name = ? AND expires > ?",
                        (*group, now),
                    )
                }
                free = [p for p in range(self.partitions) if p not in taken]
                chosen = free[: fair_share - len(held)]
                db.executemany(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                    [(*group, p, member.consumer, now + self.lease) for p in chosen],
                )
                held.update(chosen)
            (generation,) = db.execute(
                "SELECT generation FROM groups WHERE namespace = ? AND topic = ?"
                " AND group_name = ?",
                group,
            ).fetchone()
        return Turn(generation, frozenset(held), fair_share)

    def give_up(self, member: Member, partition: int) -> None:
        """Release ``partition`` (if still ours), so another consumer takes it at once."""
        with self._writing(self._consuming) as db:
            released = db.execute(
                "DELETE FROM leases WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND partition = ? AND consumer = ?",
                (self.namespace, member.topic, member.group, partition, member.consumer),
            ).rowcount
            if released:
                self._new_generation(db, member)

    def look(self, member: Member, *, for_work: bool) -> tuple[int, frozenset[int]]:
        """The group's generation and (if ``for_work``) its partitions with unhandled messages."""
        group = (self.namespace, member.topic, member.group)
        db = self._consuming
        (generation,) = db.execute(
            "SELECT generation FROM groups WHERE namespace = ? AND topic = ? AND group_name = ?",
            group,
        ).fetchone()
        if not for_work:
            return generation, frozenset()
        rows = db.execute(
            "SELECT o.partition FROM offsets o JOIN ends e ON e.namespace = o.namespace"
            " AND e.topic = o.topic AND e.partition = o.partition"
            " WHERE o.namespace = ? AND o.topic = ? AND o.group_name = ?"
            " AND e.last_offset > o.committed",
            group,
        )
        return generation, frozenset(p for (p,) in rows)

    def claim(self, member: Member, partition: int) -> Claim | None:
        """The next message of ``partition`` for the group, counting this delivery, or None."""
        where = (self.namespace, member.topic, member.group, partition)
        with self._writing(self._consuming) as db:
            row = db.execute(
                "SELECT o.committed FROM offsets o JOIN leases l ON l.namespace = o.namespace"
                " AND l.topic = o.topic AND l.group_name = o.group_name"
                " AND l.partition = o.partition"
                " WHERE o.namespace = ? AND o.topic = ? AND o.group_name = ? AND o.partition = ?"
                " AND l.consumer = ?",
                (*where, member.consumer),
            ).fetchone()
            if row is None:
                raise LeaseLostError
            entry = db.execute(
                "SELECT offset, headers, payload FROM log WHERE namespace = ? AND topic = ?"
                " AND partition = ? AND offset > ? ORDER BY offset LIMIT 1",
                (self.namespace, member.topic, partition, row[0]),
            ).fetchone()
            if entry is None:
                return None
            (delivered,) = db.execute(
                "UPDATE offsets SET delivered = delivered + 1 WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND partition = ? RETURNING delivered",
                where,
            ).fetchone()
        offset, headers, payload = entry
        return Claim(
            offset, delivered, Message.from_headers(member.topic, json.loads(headers), payload)
        )

    def commit(self, member: Member, partition: int, offset: int) -> None:
        """Record ``offset`` as handled, unless the lease is no longer ours."""
        with self._writing(self._consuming) as db:
            moved = db.execute(
                "UPDATE offsets SET committed = ?, delivered = 0 WHERE namespace = ?"
                " AND topic = ? AND group_name = ? AND partition = ? AND committed < ?"
                " AND EXISTS (SELECT 1 FROM leases l WHERE l.namespace = offsets.namespace"
                " AND l.topic = offsets.topic AND l.group_name = offsets.group_name"
                " AND l.partition = offsets.partition AND l.consumer = ?)",
                (
                    offset,
                    self.namespace,
                    member.topic,
                    member.group,
                    partition,
                    offset,
                    member.consumer,
                ),
            ).rowcount
        if not moved:
            raise LeaseLostError

    def sweep(self, older_than: float) -> int:
        """Delete the messages published before ``older_than`` that every group has passed."""
        deleted = 0
        partitions = self._consuming.execute(
            "SELECT topic, partition FROM ends WHERE namespace = ?", (self.namespace,)
        ).fetchall()
        for topic, partition in partitions:
            with self._writing(self._consuming) as db:
                deleted += db.execute(
                    "DELETE FROM log WHERE namespace = :ns AND topic = :topic"
                    " AND partition = :partition AND published < :older_than"
                    " AND offset <= coalesce((SELECT min(committed) FROM offsets"
                    " WHERE namespace = :ns AND topic = :topic AND partition = :partition),"
                    " offset)",
                    {
                        "ns": self.namespace,
                        "topic": topic,
                        "partition": partition,
                        "older_than": older_than,
                    },
                ).rowcount
        return deleted

    def _new_generation(self, db: sqlite3.Connection, member: Member) -> None:
        db.execute(
            "INSERT INTO groups VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
            " SET generation = generation + 1",
            (self.namespace, member.topic, member.group),
        )


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
        self._file: BrokerFile | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: set[EmbeddedSubscription] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Open (creating if need be) the broker file; BrokerUnavailableError if it cannot."""
        if self._file is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="souk-embedded-bus")
        try:
            self._file = await self._run(
                BrokerFile, self.path, self.namespace, self.partitions, self.lease
            )
        except Exception as error:
            self._thread.shutdown(wait=False)
            self._thread = None
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
        await asyncio.gather(*(s.stop(grace) for s in list(self._subscriptions)))
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        _neighbours[self.path].discard(self)
        if self._file is not None and self._thread is not None:
            await self._run(self._file.close)
            self._thread.shutdown(wait=False)

    async def publish(self, messages: Sequence[Message]) -> None:
        """Append ``messages`` to the log; return once they are on the disk, in order."""
        if not messages:
            return
        file = self._started()
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
        file = self._started()
        member = Member(check_name("topic", topic), check_name("group", group), uuid.uuid4().hex)
        subscription = EmbeddedSubscription(
            self, file, member, handler=handler, dead_letters=dead_letters, options=options
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
        file = self._started()
        return await self._run(file.sweep, time.time() - self.retention)

    async def _run(self, call: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``call`` on this bus's own thread, where its SQLite connections live."""
        if self._thread is None:
            raise RuntimeError("the embedded bus is not started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(call, *args, **kwargs))

    def _started(self) -> BrokerFile:
        if self._file is None or self._closed:
            raise RuntimeError("the embedded bus is not started, or already closed")
        return self._file

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
            except sqlite3.Error as error:
                _log.warning("retention sweep failed", path=str(self.path), error=str(error))
            else:
                if deleted:
                    _log.info("retention sweep", path=str(self.path), deleted=deleted)
            await asyncio.sleep(SWEEP_EVERY)


class EmbeddedSubscription:
    """One consumer of a group: a watcher that keeps its partitions, a worker per partition."""

    def __init__(
        self,
        bus: EmbeddedBus,
        file: BrokerFile,
        member: Member,
        *,
        handler: Handler,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions,
    ) -> None:
        self.member = member
        self._bus = bus
        self._file = file
        self._handler = handler
        self._dead_letters = dead_letters
        self._options = options
        self.slots = asyncio.Semaphore(options.concurrency)
        """One slot per message in flight: at most ``concurrency`` partitions at work."""
        self._partitions: dict[int, PartitionWorker] = {}
        self._nudged = asyncio.Event()
        self._generation = 0
        self._heartbeat = file.lease / 3
        self._watcher: asyncio.Task[None] | None = None
        self._stopped = False

    async def begin(self) -> None:
        """Take the first partitions and start watching."""
        await self._take_turn()
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching; give handlers in flight ``grace`` seconds, then cancel them.

        A cancelled handler's message stays unacknowledged (and counted as delivered), and the
        partitions are released at once, so another consumer of the group takes them over.
        Stopping twice is harmless.
        """
        if self._stopped:
            return
        self._stopped = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        workers = [w.task for w in self._partitions.values()]
        for worker in self._partitions.values():
            worker.stop()
        if workers:
            _, unfinished = await asyncio.wait(workers, timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        try:
            await self._bus._run(self._file.leave, self.member)
        except sqlite3.Error as error:
            _log.warning("could not leave the group; its leases will expire", error=str(error))
        self._bus._forget(self)

    def nudge(self) -> None:
        """Look for work now rather than at the next poll."""
        self._nudged.set()

    async def handle(self, partition: int) -> bool:
        """Handle the next message of ``partition``; False once there is none."""
        claim = await self._bus._run(self._file.claim, self.member, partition)
        if claim is None:
            return False
        delivery = Delivery(claim.message, self.member.group, partition, claim.delivered)
        await dispatch(self._handler, delivery, self._options, self._dead_letters)
        await self._bus._run(self._file.commit, self.member, partition, claim.offset)
        return True

    async def give_up(self, partition: int) -> None:
        """Release a partition this consumer no longer works."""
        await self._bus._run(self._file.give_up, self.member, partition)

    def worker_done(self, partition: int) -> None:
        """Forget the worker of ``partition``: it ended."""
        self._partitions.pop(partition, None)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        delay = FASTEST_POLL
        next_turn = loop.time() + self._heartbeat
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._nudged.wait()
            active = self._nudged.is_set()
            self._nudged.clear()
            try:
                waiting = [w for w in self._partitions.values() if w.waiting]
                generation, with_work = await self._bus._run(
                    self._file.look, self.member, for_work=bool(waiting)
                )
                if generation != self._generation or loop.time() >= next_turn:
                    await self._take_turn()
                    next_turn = loop.time() + self._heartbeat
                for worker in waiting:
                    if worker.partition in with_work:
                        worker.wake()
                        active = True
            except sqlite3.Error as error:
                _log.warning("embedded broker poll failed", error=str(error))
                active = False
            delay = FASTEST_POLL if active else min(delay * 2, SLOWEST_POLL)

    async def _take_turn(self) -> None:
        turn = await self._bus._run(self._file.take_turn, self.member)
        self._generation = turn.generation
        for partition in sorted(turn.held - self._partitions.keys()):
            self._partitions[partition] = PartitionWorker(self, partition)
        for partition, worker in self._partitions.items():
            if partition not in turn.held:
                worker.retire()  # lost: another consumer took it while we were silent
        staying = [w for w in self._partitions.values() if not w.retiring]
        excess = len(staying) - turn.fair_share
        if excess > 0:
            # Idle partitions first: they go at once, busy ones after their message.
            by_preference = sorted(staying, key=lambda w: (not w.waiting, -w.partition))
            for worker in by_preference[:excess]:
                worker.retire()


class PartitionWorker:
    """Works one partition, one message at a time, while the subscription holds its lease."""

    def __init__(self, subscription: EmbeddedSubscription, partition: int) -> None:
        self.partition = partition
        self.waiting = False
        self.retiring = False
        self._subscription = subscription
        self._stopping = False
        self._work = asyncio.Event()
        self._work.set()  # a partition just taken may hold messages already
        self.task = asyncio.create_task(self._run())

    def wake(self) -> None:
        """There are messages to handle."""
        self._work.set()

    def retire(self) -> None:
        """Give the partition up after the message in hand (at once if idle)."""
        self.retiring = True
        self._work.set()

    def stop(self) -> None:
        """Finish the message in hand and end, keeping the lease (the subscription leaves)."""
        self._stopping = True
        self._work.set()

    async def _run(self) -> None:
        subscription = self._subscription
        try:
            while not self._stopping:
                if self.retiring:
                    await self._give_up()
                    return
                self.waiting = True
                await self._work.wait()
                self.waiting = False
                self._work.clear()
                await self._drain()
        except LeaseLostError:
            return
        finally:
            subscription.worker_done(self.partition)

    async def _drain(self) -> None:
        """Handle messages until the partition is empty or this worker is told to end."""
        while not self._told_to_end():
            try:
                async with self._subscription.slots:
                    if self._told_to_end():  # while it waited for a slot
                        return
                    if not await self._subscription.handle(self.partition):
                        return
            except LeaseLostError:
                raise
            except Exception as error:  # noqa: BLE001 - the file or the dead-letter sink failed
                # The message stays uncommitted: it is claimed again (attempt + 1) after a pause.
                _log.warning(
                    "message not acknowledged; delivering it again",
                    topic=self._subscription.member.topic,
                    partition=self.partition,
                    error=str(error),
                )
                await asyncio.sleep(RETRY_AFTER_ERROR)

    async def _give_up(self) -> None:
        try:
            await self._subscription.give_up(self.partition)
        except sqlite3.Error as error:
            # The lease stays ours: the next turn finds it without a worker and starts one.
            _log.warning(
                "could not give up a partition", partition=self.partition, error=str(error)
            )

    def _told_to_end(self) -> bool:
        return self._stopping or self.retiring
