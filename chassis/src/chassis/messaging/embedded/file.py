"""The broker file: the SQLite schema, and what a bus does to it from its own thread.

Publishing appends to the log; consuming claims the next message of a partition and commits
its offset; joining, leaving and giving up a partition change the group's generation. See
the package's docstring for what each table holds.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chassis.messaging.message import (
    EVENT_TYPE,
    KEY,
    MESSAGE_ID,
    SCHEMA_VERSION,
    MalformedMessageError,
    Message,
    new_message_id,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

DATABASE = "bus.sqlite3"
BUSY_TIMEOUT = 5.0
"""How long a publish, claim or commit waits for another process's transaction before the
broker counts as down (a heartbeat waits one heartbeat period, and is tried again)."""
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
class Commit:
    """A partition's message at ``offset`` handled; ``next_in_hand``: its successor claimed."""

    partition: int
    offset: int
    next_in_hand: bool = False


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


def open_connection(path: Path, synchronous: str, busy_timeout: float) -> sqlite3.Connection:
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


def _claim(topic: str, entry: tuple[int, object, object], delivered: int) -> Claim:
    offset, headers, payload = entry
    try:
        return Claim(offset, delivered, _read_entry(topic, headers, payload))
    except MalformedMessageError as error:
        salvaged, account = _salvage(topic, headers, payload, str(error))
        return Claim(offset, delivered, salvaged, malformed=account)


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
        self._publishing = open_connection(path, "FULL", BUSY_TIMEOUT)
        self._consuming = open_connection(path, "NORMAL", BUSY_TIMEOUT)
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
            new_generation(db, self.namespace, member)

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
            new_generation(db, self.namespace, member)

    def give_up(self, member: Member, partition: int) -> None:
        """Release ``partition`` (if still ours), so another consumer takes it at once."""
        with write_transaction(self._consuming) as db:
            released = db.execute(
                "DELETE FROM leases WHERE namespace = ? AND topic = ? AND group_name = ?"
                " AND partition = ? AND consumer = ?",
                (self.namespace, member.topic, member.group, partition, member.consumer),
            ).rowcount
            if released:
                new_generation(db, self.namespace, member)

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

    def claim(self, member: Member, partition: int, *, limit: int = 1) -> list[Claim]:
        """The next ``limit`` messages of ``partition`` for the group (none: an empty list).

        The first is counted as delivered once more (its ``delivered`` seeds its attempt); the
        others are in hand, not yet delivered: :meth:`commit` counts each when the one before
        it is committed. The lease must still be ours, and is renewed: a message is never
        started on a lease about to be taken over.
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
            entries = db.execute(
                "SELECT offset, headers, payload FROM log WHERE namespace = ? AND topic = ?"
                " AND partition = ? AND offset > ? ORDER BY offset LIMIT ?",
                (self.namespace, member.topic, partition, committed, limit),
            ).fetchall()
            if not entries:
                return []
            (delivered,) = db.execute(
                "UPDATE offsets SET delivered = delivered + 1 WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND partition = ? RETURNING delivered",
                where,
            ).fetchone()
        return [
            _claim(member.topic, entry, delivered if n == 0 else 1)
            for n, entry in enumerate(entries)
        ]

    def commit(self, member: Member, commits: Sequence[Commit]) -> frozenset[int]:
        """Record each commit's offset as handled, in one transaction; the partitions whose
        lease is no longer ours (their offsets stay where the successor has them).

        A commit with the next message already in hand counts that message as delivered
        (once: it is handed to its handler next) and renews the lease for it, as a claim does.
        """
        lost: set[int] = set()
        with write_transaction(self._consuming) as db:
            now = time.time()
            for commit in commits:
                where = (self.namespace, member.topic, member.group, commit.partition)
                if commit.next_in_hand:
                    renewed = db.execute(
                        "UPDATE leases SET expires = max(expires, ?) WHERE namespace = ?"
                        " AND topic = ? AND group_name = ? AND partition = ? AND consumer = ?",
                        (now + self.lease, *where, member.consumer),
                    ).rowcount
                    if not renewed:
                        lost.add(commit.partition)
                        continue
                moved = db.execute(
                    "UPDATE offsets SET committed = ?, delivered = ? WHERE namespace = ?"
                    " AND topic = ? AND group_name = ? AND partition = ? AND committed < ?"
                    " AND EXISTS (SELECT 1 FROM leases l WHERE l.namespace = offsets.namespace"
                    " AND l.topic = offsets.topic AND l.group_name = offsets.group_name"
                    " AND l.partition = offsets.partition AND l.consumer = ?)",
                    (
                        commit.offset,
                        int(commit.next_in_hand),
                        *where,
                        commit.offset,
                        member.consumer,
                    ),
                ).rowcount
                if not moved:
                    lost.add(commit.partition)
        return frozenset(lost)

    def put_back(self, member: Member, partition: int, offset: int) -> None:
        """Uncount the delivery of the message at ``offset``, claimed but never started (a
        worker that ends with it in hand after counting it at its predecessor's commit)."""
        with write_transaction(self._consuming) as db:
            db.execute(
                "UPDATE offsets SET delivered = 0 WHERE namespace = ? AND topic = ?"
                " AND group_name = ? AND partition = ? AND delivered = 1 AND committed < ?"
                " AND EXISTS (SELECT 1 FROM leases l WHERE l.namespace = offsets.namespace"
                " AND l.topic = offsets.topic AND l.group_name = offsets.group_name"
                " AND l.partition = offsets.partition AND l.consumer = ?)",
                (self.namespace, member.topic, member.group, partition, offset, member.consumer),
            )

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


def new_generation(db: sqlite3.Connection, namespace: str, member: Member) -> None:
    db.execute(
        "INSERT INTO groups VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
        " SET generation = generation + 1",
        (namespace, member.topic, member.group),
    )
