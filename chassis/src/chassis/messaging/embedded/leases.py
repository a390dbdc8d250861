"""The heartbeats of a bus's consumers: their leases on the partitions of their groups."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chassis.messaging.embedded.file import open_connection, write_transaction

if TYPE_CHECKING:
    from pathlib import Path

    from chassis.messaging.embedded.file import Member

DEFAULT_LEASE = 6.0
"""Seconds a consumer owns its partitions past its last heartbeat."""
LONGEST_HEARTBEAT = 1.0
"""Heartbeats come every third of the lease, but at least this often."""


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
        self._db = open_connection(path, "NORMAL", self.heartbeat)

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
