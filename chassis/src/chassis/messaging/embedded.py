"""The embedded broker: one SQLite file in a directory, shared by the local processes.

``souk up`` needs a broker that is durable, shared by several service processes on one
machine, survives ``souk down``/``souk up`` and asks for no server. A SQLite database in WAL
mode is all of that: every process opens the same file, writers take turns under SQLite's
lock (``BEGIN IMMEDIATE``, with a busy timeout), readers never wait, and a committed
transaction survives the process (and, for a publish, a power cut). Each bus drives the
file from two threads of its own, with the stdlib ``sqlite3``: one publishes and consumes,
the other only renews the leases (below), so a heartbeat never queues behind a publish that
waits for the lock. Every call is one short transaction, and each connection stays in the
thread that made it (aiosqlite would be the same threads with more layers).

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

A subscription is one consumer of its group. Its heartbeat renews its consumer row and its
leases every third of the lease (at most a second apart), takes free or expired partitions
up to its fair share (``ceil(partitions / live consumers)``) and gives up those beyond it,
each at a message boundary, so a partition never has two handlers. A consumer killed with
SIGKILL stops renewing, and its partitions are taken over once its lease expires (within
``lease`` plus a heartbeat: 7 s by default). A heartbeat waits at most a heartbeat period
for the lock and is tried again at once, so it gets through as soon as a lock held elsewhere
(a slow fsync, a checkpoint, a large batch) is released; and a consumer whose own heartbeat
came late judges nobody's lease in that turn: the others were held up by the same lock, so
their expired leases are not taken, only renewed by their owners a moment later. Each owned
partition is worked one message at a time: claim the next message after ``committed``
(counting the delivery, and renewing the lease, which must still be ours), run
:func:`dispatch`, commit the offset, in a transaction that also checks the lease is still
ours and only moves the offset forwards, so a consumer that lost its lease never moves its
successor's offset. A log entry that is not a Souk message goes to the dead letters.

Nothing pushes: the watcher polls, a few milliseconds after activity and backing off to a
quarter of a second when idle (one indexed read per subscription), so an idle system costs
almost no CPU. Publishing through a bus also nudges the subscriptions of every bus of this
process on the same directory. Retention deletes the messages every group of their topic has
passed once they are older than ``retention``, so the file stops growing.

The file deleted or replaced under a running bus (``rm -rf`` of the data directory) would
swallow every message published into it. So each publish and each poll checks the path
still names the file the bus opened: if not, the publish raises
:class:`BrokerUnavailableError` (the outbox keeps the messages and publishes them again) and
the bus opens the new file, where its subscriptions join their groups again, from the
beginning of the new log.

Limits: leases run on the wall clock of the machine; a handler that blocks the event loop
for longer than the lease loses its partitions to another consumer (its commit is refused,
and the message is handled again: at-least-once), and so may a consumer whose process is
starved of the write lock for most of a lease while another one is not; a namespace keeps
the number of partitions it was created with (a bus asking for another number fails to
start).
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
    DeadLetter,
    DeadLetterSink,
    Handler,
    SubscribeOptions,
)
from chassis.messaging.dispatch import dispatch
from chassis.messaging.message import (
    EVENT_TYPE,
    KEY,
    MESSAGE_ID,
    SCHEMA_VERSION,
    Delivery,
    MalformedMessageError,
    Message,
    check_name,
    new_message_id,
    partition_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

_log = get_logger("chassis.messaging.embedded")

_P = ParamSpec("_P")
_T = TypeVar("_T")

DATABASE = "bus.sqlite3"
DEFAULT_LEASE = 6.0
"""Seconds a consumer owns its partitions past its last heartbeat."""
LONGEST_HEARTBEAT = 1.0
"""Heartbeats come every third of the lease, but at least this often."""
DEFAULT_RETENTION = 7 * 24 * 3600.0
BUSY_TIMEOUT = 5.0
"""How long a publish, claim or commit waits for another process's transaction before the
broker counts as down (a heartbeat waits one heartbeat period, and is tried again)."""
FASTEST_POLL = 0.005
SLOWEST_POLL = 0.25
SWEEP_EVERY = 600.0
RETRY_AFTER_ERROR = 0.5
PLACEHOLDER = "unknown"
"""Stands in for a header a malformed log entry lacks, in its dead letter."""

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


class BrokerFileGoneError(Exception):
    """The broker file was deleted or replaced since the bus opened it."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The next message of a partition, handed out for the ``delivered``-th time.

    ``malformed`` says why the log entry is no Souk message; ``message`` then holds what could
    be read of it, with placeholders for the rest.
    """

    offset: int
    delivered: int
    message: Message
    malformed: str | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """What a consumer holds after renewing its heartbeat and leases, and its fair share.

    ``at`` is when the turn got the lock (``time.monotonic()``), for the next turn to tell
    whether it came late.
    """

    generation: int
    held: frozenset[int]
    fair_share: int
    at: float


@dataclass(frozen=True, slots=True)
class Member:
    """Who is asking: one consumer of ``group`` on ``topic``."""

    topic: str
    group: str
    consumer: str


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction on ``db``, committed if the block succeeds and rolled back if not."""
    # IMMEDIATE takes the write lock up front: two writers never both read then collide.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (a full disk, an I/O error) may leave the transaction open, or not.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _connect(path: Path, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    db.execute(f"PRAGMA busy_timeout = {round(busy_timeout * 1000)}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` names (device and inode), or None if none."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _parsed(headers: object) -> object:
    """The stored ``headers`` (written by anyone: SQLite keeps any type) parsed as JSON."""
    if not isinstance(headers, str | bytes):
        raise MalformedMessageError(f"headers are {type(headers).__name__}, not JSON text")
    try:
        return json.loads(headers)
    except ValueError as error:
        raise MalformedMessageError(f"headers are not JSON ({error})") from None


def _read_entry(topic: str, headers: object, payload: object) -> Message:
    """The message a log entry holds; MalformedMessageError if it holds none."""
    fields = _parsed(headers)
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise MalformedMessageError("headers are not a JSON object of strings")
    if not isinstance(payload, bytes):
        raise MalformedMessageError(f"the payload is {type(payload).__name__}, not bytes")
    try:
        return Message.from_headers(topic, fields, payload)
    except ValueError as error:  # MalformedMessageError, or a schema version not a number
        raise MalformedMessageError(str(error)) from None


def _salvage(topic: str, headers: object, payload: object, error: str) -> tuple[Message, str]:
    """What can be read of a malformed log entry, and the error to bury it with."""
    try:
        loaded = _parsed(headers)
    except MalformedMessageError:
        loaded = None
    readable = (
        {k: v for k, v in loaded.items() if isinstance(v, str)} if isinstance(loaded, dict) else {}
    )
    if not readable.get(SCHEMA_VERSION, "1").isdecimal():
        del readable[SCHEMA_VERSION]
    stand_ins = {KEY: PLACEHOLDER, EVENT_TYPE: PLACEHOLDER, MESSAGE_ID: new_message_id()}
    missing = [name for name in stand_ins if name not in readable]
    body = payload if isinstance(payload, bytes) else str(payload).encode()
    message = Message.from_headers(topic, {**stand_ins, **readable}, body)
    account = f"malformed message: {error}"
    if missing:
        account += f"; placeholders stand in for {', '.join(missing)}"
    return message, f"{account}; headers as stored: {repr(headers)[:1000]}"


class BrokerFile:
    """The SQLite file, used from one thread only (the bus's own), for all but the heartbeats.

    Two connections: publishing waits for the disk (``synchronous=FULL``), because a published
    message must survive a power cut; the consumers' bookkeeping does not (``NORMAL``: a lost
    commit only means a message is delivered again).
    """

    def __init__(self, path: Path, namespace: str, partitions: int, lease: float) -> None:
        self.path = path
        self.namespace = namespace
        self.partitions = partitions
        self.lease = lease
        path.parent.mkdir(parents=True, exist_ok=True)
        self._publishing = _connect(path, "FULL", BUSY_TIMEOUT)
        self._consuming = _connect(path, "NORMAL", BUSY_TIMEOUT)
        self._identity = _identity(path)
        with write_transaction(self._consuming) as db:
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

    def close(self) -> None:
        """Close both connections."""
        self._publishing.close()
        self._consuming.close()

    def check(self) -> None:
        """Raise BrokerFileGoneError unless the path still names the file opened."""
        if _identity(self.path) != self._identity:
            raise BrokerFileGoneError(f"{self.path} was deleted or replaced")

    def publish(self, entries: Sequence[tuple[str, int, str, bytes]]) -> None:
        """Append ``(topic, partition, headers, payload)`` entries in one durable transaction."""
        self.check()
        with write_transaction(self._publishing) as db:
            now = time.time()
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
        self.check()  # deleted meanwhile, the file took the messages with it

    def join(self, member: Member, *, from_start: bool = False) -> None:
        """Register the consumer in its group, and the group (if new) at the end of the log.

        ``from_start``: a new group starts at the beginning of the log instead (a group that
        finds itself on a new file was subscribed to everything published into it).
        """
        ns, topic, group = self.namespace, member.topic, member.group
        with write_transaction(self._consuming) as db:
            db.executemany(
                "INSERT OR IGNORE INTO offsets VALUES (?, ?, ?, ?, CASE WHEN ? THEN 0 ELSE"
                " coalesce((SELECT last_offset FROM ends WHERE namespace = ? AND topic = ?"
                " AND partition = ?), 0) END, 0)",
                [(ns, topic, group, p, from_start, ns, topic, p) for p in range(self.partitions)],
            )
            db.execute(
                "INSERT INTO consumers VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET expires = excluded.expires",
                (ns, topic, group, member.consumer, time.time() + self.lease),
            )
            _new_generation(db, self.namespace, member)

    def leave(self, member: Member) -> None:
        """Give up every partition and leave the group."""
        key = (self.namespace, member.topic, member.group, member.consumer)
        with write_transaction(self._consuming) as db:
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
            _new_generation(db, self.namespace, member)

    def give_up(self, member: Member, partition: int) -> None:
        """Release ``partition`` (if still ours), so another consumer takes it at once."""
        with write_transaction(self._consuming) as db:
            released = db.execute(
                "DELETE FROM leases WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND partition = ? AND consumer = ?",
                (self.namespace, member.topic, member.group, partition, member.consumer),
            ).rowcount
            if released:
                _new_generation(db, self.namespace, member)

    def look(self, member: Member, *, for_work: bool) -> tuple[int, frozenset[int]]:
        """The group's generation and (if ``for_work``) its partitions with unhandled messages."""
        self.check()
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
        """The next message of ``partition`` for the group, counting this delivery, or None.

        The lease must still be ours, and is renewed: a message is never started on a lease
        about to be taken over.
        """
        where = (self.namespace, member.topic, member.group, partition)
        with write_transaction(self._consuming) as db:
            renewed = db.execute(
                "UPDATE leases SET expires = max(expires, ?) WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND partition = ? AND consumer = ?",
                (time.time() + self.lease, *where, member.consumer),
            ).rowcount
            if not renewed:
                raise LeaseLostError
            (committed,) = db.execute(
                "SELECT committed FROM offsets WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND partition = ?",
                where,
            ).fetchone()
            entry = db.execute(
                "SELECT offset, headers, payload FROM log WHERE namespace = ? AND topic = ?"
                " AND partition = ? AND offset > ? ORDER BY offset LIMIT 1",
                (self.namespace, member.topic, partition, committed),
            ).fetchone()
            if entry is None:
                return None
            (delivered,) = db.execute(
                "UPDATE offsets SET delivered = delivered + 1 WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND partition = ? RETURNING delivered",
                where,
            ).fetchone()
        offset, headers, payload = entry
        try:
            return Claim(offset, delivered, _read_entry(member.topic, headers, payload))
        except MalformedMessageError as error:
            salvaged, account = _salvage(member.topic, headers, payload, str(error))
            return Claim(offset, delivered, salvaged, malformed=account)

    def commit(self, member: Member, partition: int, offset: int) -> None:
        """Record ``offset`` as handled, unless the lease is no longer ours."""
        with write_transaction(self._consuming) as db:
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
            with write_transaction(self._consuming) as db:
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


class Leases:
    """The heartbeats of a bus's consumers, on a connection (and a thread) of their own.

    The connection waits at most a heartbeat period for the lock, so a heartbeat blocked by a
    lock held elsewhere fails soon and is tried again: it gets through as soon as the lock is
    released, well before the lease runs out.
    """

    def __init__(self, path: Path, namespace: str, partitions: int, lease: float) -> None:
        self.namespace = namespace
        self.partitions = partitions
        self.lease = lease
        self.heartbeat = min(lease / 3, LONGEST_HEARTBEAT)
        """Seconds between two heartbeats of a consumer, and the most one waits for the lock."""
        self._db = _connect(path, "NORMAL", self.heartbeat)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def take_turn(self, member: Member, previous: float | None) -> Turn:
        """Renew the heartbeat and the leases; take free partitions up to the fair share.

        ``previous`` is when this consumer's last turn got the lock (None for its first). Only
        a turn that comes on time judges the others: one that came late was held up, and so
        were they, so their expired heartbeats and leases are left to them to renew.
        """
        group = (self.namespace, member.topic, member.group)
        mine = (*group, member.consumer)
        with write_transaction(self._db) as db:
            at, now = time.monotonic(), time.time()
            # Half a lease: longer than any turn not held up, shorter than the lease left
            # to a consumer held up by the same lock once it is released.
            on_time = previous is not None and at - previous <= self.lease / 2
            expired_before = now if on_time else -math.inf
            db.execute(
                "INSERT INTO consumers VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET expires = excluded.expires",
                (*mine, now + self.lease),
            )
            db.execute(
                "DELETE FROM consumers WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND expires <= ?",
                (*group, expired_before),
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
                        (*group, expired_before),
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
        return Turn(generation, frozenset(held), fair_share, at)


def _new_generation(db: sqlite3.Connection, namespace: str, member: Member) -> None:
    db.execute(
        "INSERT INTO groups VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
        " SET generation = generation + 1",
        (namespace, member.topic, member.group),
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
        await _cancel(self._sweeper)
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


class EmbeddedSubscription:
    """One consumer of a group: a watcher, a heartbeat and a worker per partition it holds."""

    def __init__(
        self,
        bus: EmbeddedBus,
        file: BrokerFile,
        leases: Leases,
        member: Member,
        *,
        handler: Handler,
        dead_letters: DeadLetterSink,
        options: SubscribeOptions,
    ) -> None:
        self.member = member
        self._bus = bus
        self._file = file
        self._leases = leases
        self._handler = handler
        self._dead_letters = dead_letters
        self._options = options
        self.slots = asyncio.Semaphore(options.concurrency)
        """One slot per message in flight: at most ``concurrency`` partitions at work."""
        self._partitions: dict[int, PartitionWorker] = {}
        self._nudged = asyncio.Event()
        self._turn_due = asyncio.Event()
        self._generation = 0
        self._last_turn: float | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._heart: asyncio.Task[None] | None = None
        self._stopped = False

    async def begin(self) -> None:
        """Take the first partitions and start watching."""
        await self._take_turn()
        self._watcher = asyncio.create_task(self._watch())
        self._heart = asyncio.create_task(self._keep_leases())

    async def stop(self, grace: float = 10.0) -> None:
        """Stop fetching; give handlers in flight ``grace`` seconds, then cancel them.

        A cancelled handler's message stays unacknowledged (and counted as delivered), and the
        partitions are released at once, so another consumer of the group takes them over.
        Stopping twice is harmless.
        """
        if self._stopped:
            return
        self._stopped = True
        await _cancel(self._watcher)  # first: while moving to a new file, it starts a heart
        await _cancel(self._heart)
        await self._stop_workers(grace)
        try:
            await self._bus._run(self._file.leave, self.member)
        except Exception as error:  # noqa: BLE001 - the leases expire by themselves
            _log.warning("could not leave the group; its leases will expire", error=str(error))
        self._bus._forget(self)

    def nudge(self) -> None:
        """Look for work now rather than at the next poll."""
        self._nudged.set()

    async def handle(self, partition: int) -> bool:
        """Handle the next message of ``partition``; False once there is none."""
        file = self._file  # claimed and committed in the same file, even if it is replaced
        claim = await self._bus._run(file.claim, self.member, partition)
        if claim is None:
            return False
        if claim.malformed is None:
            delivery = Delivery(claim.message, self.member.group, partition, claim.delivered)
            await dispatch(self._handler, delivery, self._options, self._dead_letters)
        else:
            await self._dead_letters.bury(
                DeadLetter(claim.message, self.member.group, claim.delivered, claim.malformed)
            )
            _log.error(
                "malformed message dead-lettered",
                topic=self.member.topic,
                partition=partition,
                error=claim.malformed,
            )
        await self._bus._run(file.commit, self.member, partition, claim.offset)
        return True

    async def give_up(self, partition: int) -> None:
        """Release a partition this consumer no longer works."""
        await self._bus._run(self._file.give_up, self.member, partition)

    def worker_done(self, partition: int) -> None:
        """Forget the worker of ``partition``: it ended."""
        self._partitions.pop(partition, None)

    async def _watch(self) -> None:
        delay = FASTEST_POLL
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._nudged.wait()
            active = self._nudged.is_set()
            self._nudged.clear()
            try:
                active = await self._poll() or active
            except Exception as error:  # noqa: BLE001 - the watcher must outlive any one poll
                _log.warning("embedded broker poll failed", error=repr(error))
                active = False
            delay = FASTEST_POLL if active else min(delay * 2, SLOWEST_POLL)

    async def _poll(self) -> bool:
        """Wake the workers of partitions with messages; whether there were any."""
        waiting = [w for w in self._partitions.values() if w.waiting]
        file = self._file
        try:
            generation, with_work = await self._bus._run(
                file.look, self.member, for_work=bool(waiting)
            )
        except BrokerFileGoneError:
            await self._bus.reopen(file)
            await self._move()
            return True
        if generation != self._generation:
            self._turn_due.set()
        woken = [w for w in waiting if w.partition in with_work]
        for worker in woken:
            worker.wake()
        return bool(woken)

    async def _move(self) -> None:
        """Join the group again in the file that replaced ours, leaving its partitions behind."""
        file, leases = self._bus.opened()
        if file is self._file:
            return
        await _cancel(self._heart)
        await self._stop_workers(grace=self._leases.lease)
        await self._bus._run(file.join, self.member, from_start=True)
        self._file, self._leases = file, leases
        self._generation, self._last_turn = 0, None
        self._turn_due.set()
        self._heart = asyncio.create_task(self._keep_leases())

    async def _stop_workers(self, grace: float) -> None:
        """Let the workers finish the message in hand for ``grace`` seconds, then cancel them."""
        workers = list(self._partitions.values())
        for worker in workers:
            worker.stop()
        if workers:
            _, unfinished = await asyncio.wait([w.task for w in workers], timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _keep_leases(self) -> None:
        loop = asyncio.get_running_loop()
        heartbeat = self._leases.heartbeat
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(heartbeat):
                    await self._turn_due.wait()
            self._turn_due.clear()
            began = loop.time()
            try:
                await self._take_turn()
            except Exception as error:  # noqa: BLE001 - the heartbeat must outlive any one turn
                last = self._last_turn
                # A lock held elsewhere for a moment is routine; half a lease without a turn is not.
                at_risk = last is None or time.monotonic() - last > self._leases.lease / 2
                (_log.warning if at_risk else _log.debug)(
                    "embedded broker heartbeat failed", topic=self.member.topic, error=repr(error)
                )
                # A lock held elsewhere has been waited for already: try again at once, but
                # not in a busy loop on an error that comes at once.
                await asyncio.sleep(max(0.0, heartbeat - (loop.time() - began)))
                self._turn_due.set()

    async def _take_turn(self) -> None:
        turn = await self._bus._beat(self._leases.take_turn, self.member, self._last_turn)
        self._generation, self._last_turn = turn.generation, turn.at
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


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
        except Exception as error:  # noqa: BLE001 - the next turn finds the lease and tries again
            # The lease stays ours: the next turn finds it without a worker and starts one.
            _log.warning(
                "could not give up a partition", partition=self.partition, error=str(error)
            )

    def _told_to_end(self) -> bool:
        return self._stopping or self.retiring
