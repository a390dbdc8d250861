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

The modules: ``file`` (the schema, publishing, claiming and committing), ``leases`` (the
heartbeats and the fair share of partitions), ``subscription`` (a consumer: its watcher,
heartbeat and partition workers) and ``bus`` (the ``EmbeddedBus`` that ties them together).
"""

from __future__ import annotations

from chassis.messaging.embedded.bus import DEFAULT_RETENTION, EmbeddedBus
from chassis.messaging.embedded.file import DATABASE, BrokerFile, write_transaction
from chassis.messaging.embedded.leases import DEFAULT_LEASE, Leases
from chassis.messaging.embedded.subscription import EmbeddedSubscription

__all__ = [
    "DATABASE",
    "DEFAULT_LEASE",
    "DEFAULT_RETENTION",
    "BrokerFile",
    "EmbeddedBus",
    "EmbeddedSubscription",
    "Leases",
    "write_transaction",
]
