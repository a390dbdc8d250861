"""What the embedded broker promises beyond the contract: a file shared by processes and runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chassis.messaging import (
    BrokerUnavailableError,
    Delivery,
    Message,
    SubscribeOptions,
    embedded,
    partition_for,
)
from chassis.messaging.embedded import DATABASE, EmbeddedBus, write_transaction
from chassis.messaging.embedded.file import BrokerFile, Commit, Member
from chassis.messaging.embedded.leases import Leases
from chassis.messaging.message import EVENT_TYPE, MESSAGE_ID

from .recording import WAIT, DeadLetters, Recorder, burst, eventually, sequence_of

OpenBus = Callable[..., Awaitable[EmbeddedBus]]
TOPIC = "counted"
NAMESPACE = "souk"
FAST = SubscribeOptions(concurrency=4, handler_timeout=5.0, retry_delay=0.05)
SHORT_LEASE = 1.0


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
async def open_bus(broker_dir: Path) -> AsyncIterator[OpenBus]:
    """``await open_bus(**options)`` → a started EmbeddedBus on ``broker_dir``, closed after."""
    opened: list[EmbeddedBus] = []

    async def _open(**options: Any) -> EmbeddedBus:
        bus = EmbeddedBus(broker_dir, namespace=NAMESPACE, **options)
        await bus.start()
        opened.append(bus)
        return bus

    yield _open
    for bus in opened:
        await bus.close(grace=0)


def counted(key: str, numbers: range) -> list[Message]:
    return [
        Message(topic=TOPIC, key=key, event_type="Counted", payload=f"{key}:{n}".encode())
        for n in numbers
    ]


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


PUBLISHER = """
    import asyncio, sys
    from chassis.messaging import Message, connect

    async def main(url):
        bus = connect(url)
        await bus.start()
        for n in range(10):
            await bus.publish([
                Message(topic="counted", key=f"k{k}", event_type="Counted",
                        payload=f"k{k}:{n}".encode())
                for k in range(4)
            ])
        await bus.close()

    asyncio.run(main(sys.argv[1]))
"""


async def test_messages_published_by_another_process_are_consumed_in_order(
    open_bus: OpenBus, broker_dir: Path
) -> None:
    consumer = await open_bus()
    seen = Recorder()
    await consumer.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=FAST)

    publisher = _python(PUBLISHER, f"embedded://{broker_dir}?namespace={NAMESPACE}")
    assert await asyncio.to_thread(publisher.wait, WAIT) == 0

    await seen.wait_until(lambda: len(seen.handled) == 40)
    for k in range(4):
        assert sequence_of(seen.handled, f"k{k}") == list(range(10))


async def test_a_bus_reopened_on_the_directory_continues_where_its_group_stopped(
    open_bus: OpenBus,
) -> None:
    before = Recorder()
    first_run = await open_bus()
    await first_run.subscribe(TOPIC, "ledger", before, dead_letters=DeadLetters(), options=FAST)
    await first_run.publish(counted("k0", range(5)) + counted("k1", range(5)))
    await before.wait_until(lambda: len(before.handled) == 10)
    await first_run.close()
    while_down = counted("k0", range(5, 8)) + counted("k1", range(5, 8))
    publisher = await open_bus()
    await publisher.publish(while_down)

    after = Recorder()
    second_run = await open_bus()
    await second_run.subscribe(TOPIC, "ledger", after, dead_letters=DeadLetters(), options=FAST)

    await after.wait_until(lambda: len(after.handled) >= len(while_down))
    # A repeated message of a key would come before that key's new ones.
    assert sequence_of(after.handled, "k0") == [5, 6, 7]
    assert sequence_of(after.handled, "k1") == [5, 6, 7]


async def test_a_message_cut_short_by_close_comes_back_after_reopening_as_attempt_2(
    open_bus: OpenBus,
) -> None:
    started = asyncio.Event()

    async def never_finish(_: Delivery) -> None:
        started.set()
        await asyncio.sleep(3600)

    first_run = await open_bus()
    stuck = Recorder(behaviour=never_finish)
    await first_run.subscribe(TOPIC, "ledger", stuck, dead_letters=DeadLetters(), options=FAST)
    await first_run.publish(counted("k0", range(2)))
    await asyncio.wait_for(started.wait(), WAIT)
    await first_run.close(grace=0.05)

    after = Recorder()
    second_run = await open_bus()
    await second_run.subscribe(TOPIC, "ledger", after, dead_letters=DeadLetters(), options=FAST)

    await after.wait_until(lambda: len(after.handled) == 2)
    assert [(d.message.payload, d.attempt) for d in after.handled] == [(b"k0:0", 2), (b"k0:1", 1)]


async def test_messages_claimed_together_are_counted_one_by_one_when_a_consumer_goes(
    open_bus: OpenBus,
) -> None:
    # A worker claims a partition's messages several at a time: a consumer gone mid-batch
    # leaves the handled ones acknowledged, the one in flight counted (attempt 2) and the
    # ones it held but never started uncounted (attempt 1), in order.
    started = asyncio.Event()

    async def hang_at_k0_2(delivery: Delivery) -> None:
        if delivery.message.payload == b"k0:2":
            started.set()
            await asyncio.sleep(3600)

    first_run = await open_bus()
    gone = Recorder(behaviour=hang_at_k0_2)
    await first_run.subscribe(TOPIC, "ledger", gone, dead_letters=DeadLetters(), options=FAST)
    await first_run.publish(counted("k0", range(6)))  # claimed together: one publish
    await asyncio.wait_for(started.wait(), WAIT)
    await first_run.close(grace=0.05)

    after = Recorder()
    second_run = await open_bus()
    await second_run.subscribe(TOPIC, "ledger", after, dead_letters=DeadLetters(), options=FAST)

    await after.wait_until(lambda: len(after.handled) == 4)
    assert [m.payload for m in (d.message for d in gone.handled)] == [b"k0:0", b"k0:1"]
    assert [(d.message.payload, d.attempt) for d in after.handled] == [
        (b"k0:2", 2),
        (b"k0:3", 1),
        (b"k0:4", 1),
        (b"k0:5", 1),
    ]


def test_a_message_in_hand_counts_as_delivered_once_its_predecessor_commits(
    tmp_path: Path,
) -> None:
    # The next message in hand is counted when the one before it commits (a consumer gone
    # before finishing it makes its next delivery attempt 2), and put back uncounted when
    # its worker ends without starting it (a rebalance): its next delivery is attempt 1.
    file = BrokerFile(tmp_path / DATABASE, NAMESPACE, 1, lease=30.0)
    leases = Leases(tmp_path / DATABASE, NAMESPACE, 1, lease=30.0)
    member = Member(TOPIC, "ledger", "consumer-1")
    try:
        file.join(member)
        leases.take_turn(member, None)
        entries = [(TOPIC, 0, json.dumps(m.headers()), m.payload) for m in counted("k0", range(3))]
        file.publish(entries)
        first, second, _ = file.claim(member, 0, limit=3)
        assert (first.delivered, second.delivered) == (1, 1)

        file.commit(member, [Commit(0, first.offset, next_in_hand=True)])
        assert file.claim(member, 0)[0].delivered == 2  # as if its worker had died with it

        file.commit(member, [Commit(0, second.offset, next_in_hand=True)])
        file.put_back(member, 0, second.offset + 1)
        assert file.claim(member, 0)[0].delivered == 1
    finally:
        file.close()
        leases.close()


STALLING_CONSUMER = """
    import asyncio, sqlite3, sys
    from chassis.messaging import SubscribeOptions
    from chassis.messaging.embedded import EmbeddedBus

    class NoDeadLetters:
        async def bury(self, dead_letter):
            raise AssertionError(dead_letter)

    async def main(directory, namespace, journal, lease):
        db = sqlite3.connect(journal, isolation_level=None, timeout=30)

        async def handle(delivery):
            db.execute("INSERT INTO started VALUES (?)", (delivery.message.payload.decode(),))
            await asyncio.sleep(0.5)

        bus = EmbeddedBus(directory, namespace=namespace, lease=float(lease))
        await bus.start()
        await bus.subscribe("counted", "ledger", handle, dead_letters=NoDeadLetters())
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the test closes our stdin
        await bus.close()

    asyncio.run(main(*sys.argv[1:]))
"""


def _pause_outside_a_transaction(process: subprocess.Popen[str], database: Path) -> None:
    """SIGSTOP ``process`` at a moment it holds no write lock on the broker file.

    A process paused inside a transaction would stall every other one; that is not the
    stalled consumer this test is about (one whose event loop stops between transactions).
    """
    probe = sqlite3.connect(database, isolation_level=None, timeout=0.05)
    try:
        while True:
            os.kill(process.pid, signal.SIGSTOP)
            while _state(process) != "T":  # kill() may return before the process has stopped
                time.sleep(0.001)
            try:
                probe.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                os.kill(process.pid, signal.SIGCONT)
                time.sleep(0.01)
            else:
                probe.execute("ROLLBACK")
                return
    finally:
        probe.close()


def _state(process: subprocess.Popen[str]) -> str:
    """The process's state letter from /proc (T: stopped)."""
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]


async def test_a_consumer_whose_lease_expired_does_not_commit_over_its_successor(
    open_bus: OpenBus, broker_dir: Path, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    with sqlite3.connect(journal) as db:
        db.execute("CREATE TABLE started (payload TEXT)")
    publisher = await open_bus()
    stalled = _python(STALLING_CONSUMER, str(broker_dir), NAMESPACE, str(journal), str(SHORT_LEASE))
    try:
        assert stalled.stdout is not None
        assert stalled.stdout.readline().strip() == "ready"
        await publisher.publish(counted("k0", range(5)))

        async def handler_started() -> bool:
            return bool(_started(journal))

        await eventually(handler_started)
        _pause_outside_a_transaction(stalled, broker_dir / DATABASE)

        successor = Recorder()
        bus = await open_bus(lease=SHORT_LEASE)
        await bus.subscribe(TOPIC, "ledger", successor, dead_letters=DeadLetters(), options=FAST)
        await successor.wait_until(lambda: len(successor.handled) == 5)

        os.kill(stalled.pid, signal.SIGCONT)  # it finishes k0:0 and tries to commit it
        assert stalled.stdin is not None
        stalled.stdin.close()
        assert await asyncio.to_thread(stalled.wait, WAIT) == 0
    finally:
        if stalled.poll() is None:
            os.kill(stalled.pid, signal.SIGCONT)
            stalled.kill()
            stalled.wait()

    await publisher.publish(counted("k0", range(5, 6)))

    await successor.wait_until(lambda: len(successor.handled) >= 6)
    assert _started(journal) == ["k0:0"]
    assert sequence_of(successor.handled, "k0") == [0, 1, 2, 3, 4, 5]


def _started(journal: Path) -> list[str]:
    with sqlite3.connect(journal) as db:
        return [payload for (payload,) in db.execute("SELECT payload FROM started")]


async def test_retention_deletes_only_what_every_group_has_passed(open_bus: OpenBus) -> None:
    let_go = asyncio.Event()

    async def stop_at_k0_3(delivery: Delivery) -> None:
        if delivery.message.payload == b"k0:3":
            await let_go.wait()

    ahead, behind = Recorder(), Recorder(behaviour=stop_at_k0_3)
    bus = await open_bus(retention=0.0)
    keeper = await open_bus()  # the default retention: days
    await bus.subscribe(TOPIC, "ahead", ahead, dead_letters=DeadLetters(), options=FAST)
    await bus.subscribe(TOPIC, "behind", behind, dead_letters=DeadLetters(), options=FAST)
    await bus.publish(counted("k0", range(6)))
    await ahead.wait_until(lambda: len(ahead.handled) == 6)
    await behind.wait_until(lambda: len(behind.handled) == 3 and behind.in_flight == 1)

    assert await keeper.sweep() == 0, "nothing is older than the retention"
    assert await bus.sweep() == 3, "k0:0..2 are behind both groups"

    let_go.set()
    await behind.wait_until(lambda: len(behind.handled) == 6)
    assert sequence_of(behind.handled, "k0") == list(range(6))
    swept: list[int] = []

    async def rest_swept() -> bool:  # a message is committed just after its handler returns
        swept.append(await bus.sweep())
        return sum(swept) >= 3

    await eventually(rest_swept)
    assert sum(swept) == 3


async def test_a_namespace_keeps_the_partitions_it_was_created_with(
    open_bus: OpenBus, broker_dir: Path
) -> None:
    await open_bus(partitions=8)

    with pytest.raises(ValueError, match="8 partitions, not 4"):
        await open_bus(partitions=4)


async def test_an_idle_subscription_costs_almost_no_cpu(open_bus: OpenBus) -> None:
    bus = await open_bus()
    for group in ("shipping", "mailing", "ledger"):
        await bus.subscribe(TOPIC, group, Recorder(), dead_letters=DeadLetters())
    await bus.publish(burst(TOPIC, keys=3, per_key=1))
    await asyncio.sleep(0.5)  # the polls back off to their slowest

    # process_time counts every thread of the test process, and threads an earlier test left
    # (an exporter, a pool) can take a window: the quietest of three windows is the bus's own.
    windows = []
    for _ in range(3):
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(2.0)
        windows.append((time.process_time() - cpu, time.monotonic() - wall))
    cpu, wall = min(windows)

    # About 0.4% measured here; polls that never back off (every 5 ms) cost about 12%.
    assert cpu < 0.05 * wall, f"{cpu:.3f} s of CPU in {wall:.1f} s idle (windows: {windows})"


def _hold_the_write_lock(database: Path, seconds: float, taken: threading.Event) -> None:
    """Keep the broker file's write lock for ``seconds``, as a slow writer elsewhere would."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        db.execute("COMMIT")
    finally:
        db.close()


async def test_a_write_lock_held_past_the_lease_does_not_hand_partitions_over(
    open_bus: OpenBus, broker_dir: Path
) -> None:
    lease = 1.0
    hold = 2.5 * lease

    async def outlast_the_lock(_: Delivery) -> None:
        await asyncio.sleep(hold + 1.0)

    seen = Recorder(behaviour=outlast_the_lock)
    publisher = await open_bus()
    for _ in range(2):
        bus = await open_bus(lease=lease)
        await bus.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters())
    await eventually(lambda: _both_hold_their_share(broker_dir / DATABASE))
    one_key_per_partition = {partition_for(f"k{n}", 8): f"k{n}" for n in range(64)}
    await publisher.publish([counted(key, range(1))[0] for key in one_key_per_partition.values()])

    async def all_in_flight() -> bool:
        return seen.in_flight == 8

    await eventually(all_in_flight)
    taken = threading.Event()
    locker = threading.Thread(
        target=_hold_the_write_lock, args=(broker_dir / DATABASE, hold, taken)
    )
    locker.start()
    try:
        assert await asyncio.to_thread(taken.wait, WAIT), "the lock was never taken"
    finally:
        await asyncio.to_thread(locker.join)
    await seen.wait_until(lambda: len(seen.handled) >= 8 and seen.in_flight == 0)
    await asyncio.sleep(2 * lease)  # time for a consumer that took partitions over to start

    assert len(seen.deliveries) == 8, "a message was handed to a second consumer"


async def _both_hold_their_share(database: Path) -> bool:
    with sqlite3.connect(database) as db:
        shares = db.execute(
            "SELECT count(*) FROM leases WHERE namespace = ? AND topic = ? GROUP BY consumer",
            (NAMESPACE, TOPIC),
        ).fetchall()
    return sorted(shares) == [(4,), (4,)]


async def test_publishing_into_a_deleted_broker_file_fails_and_the_next_goes_to_the_new_one(
    open_bus: OpenBus,
) -> None:
    publisher = await open_bus()
    _delete_the_broker_file(publisher)
    seen = Recorder()
    consumer = await open_bus()  # a process started meanwhile makes a new file
    await consumer.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=FAST)

    with pytest.raises(BrokerUnavailableError, match="deleted or replaced"):
        await publisher.publish(counted("k0", range(1)))
    await publisher.publish(counted("k0", range(1, 2)))

    await seen.wait_until(lambda: len(seen.handled) == 1, within=10)
    assert sequence_of(seen.handled, "k0") == [1]


async def test_a_consumer_whose_broker_file_was_replaced_consumes_from_the_new_one(
    open_bus: OpenBus,
) -> None:
    seen = Recorder()
    consumer = await open_bus()
    await consumer.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=FAST)
    _delete_the_broker_file(consumer)

    publisher = await open_bus()
    await publisher.publish(counted("k0", range(3)))

    await seen.wait_until(lambda: len(seen.handled) == 3, within=10)
    assert sequence_of(seen.handled, "k0") == [0, 1, 2]


def _delete_the_broker_file(bus: EmbeddedBus) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{bus.path}{suffix}").unlink(missing_ok=True)


async def test_the_watcher_outlives_an_unexpected_error(
    open_bus: OpenBus, broker_dir: Path
) -> None:
    seen = Recorder()
    bus = await open_bus()
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=DeadLetters(), options=FAST)
    group = (NAMESPACE, TOPIC, "ledger")
    with sqlite3.connect(broker_dir / DATABASE, isolation_level=None) as db:
        (generation,) = db.execute(
            "SELECT generation FROM groups WHERE namespace = ? AND topic = ? AND group_name = ?",
            group,
        ).fetchone()
        # Without its group row, reading the generation fails with a TypeError, not an SQL error.
        db.execute("DELETE FROM groups WHERE namespace = ? AND topic = ? AND group_name = ?", group)
        await asyncio.sleep(0.5)
        db.execute("INSERT INTO groups VALUES (?, ?, ?, ?)", (*group, generation))

    await bus.publish(counted("k0", range(2)))
    await seen.wait_until(lambda: len(seen.handled) == 2, within=10)


async def test_the_retention_sweep_outlives_an_unexpected_error(
    open_bus: OpenBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweeps = 0
    swept_again = asyncio.Event()

    async def fail_once(_: EmbeddedBus) -> int:
        nonlocal sweeps
        sweeps += 1
        if sweeps == 1:
            raise TypeError("not an SQL error")
        swept_again.set()
        return 0

    monkeypatch.setattr(embedded.bus, "SWEEP_EVERY", 0.01)
    monkeypatch.setattr(EmbeddedBus, "sweep", fail_once)
    await open_bus()

    await asyncio.wait_for(swept_again.wait(), 5)


def _append_raw(database: Path, partition: int, headers: str, payload: bytes) -> None:
    """Append an entry to the log as a foreign (or buggy) publisher would."""
    with sqlite3.connect(database, isolation_level=None) as db:
        db.execute("BEGIN IMMEDIATE")
        (offset,) = db.execute(
            "INSERT INTO ends VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE"
            " SET last_offset = last_offset + 1 RETURNING last_offset",
            (NAMESPACE, TOPIC, partition),
        ).fetchone()
        db.execute(
            "INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?)",
            (NAMESPACE, TOPIC, partition, offset, time.time(), headers, payload),
        )
        db.execute("COMMIT")


async def test_a_malformed_entry_goes_to_the_dead_letters_and_its_partition_moves_on(
    open_bus: OpenBus, broker_dir: Path
) -> None:
    seen, dead = Recorder(), DeadLetters()
    bus = await open_bus()
    await bus.subscribe(TOPIC, "ledger", seen, dead_letters=dead, options=FAST)
    partition = partition_for("k0", bus.partitions)
    await bus.publish(counted("k0", range(1)))
    lacks_key = json.dumps({MESSAGE_ID: "m-1", EVENT_TYPE: "Counted"})
    _append_raw(broker_dir / DATABASE, partition, lacks_key, b"k0:?")
    _append_raw(broker_dir / DATABASE, partition, "not json", b"k0:??")
    await bus.publish(counted("k0", range(1, 2)))

    await seen.wait_until(lambda: len(seen.handled) == 2, within=10)
    await dead.wait_for(2, within=1)
    assert sequence_of(seen.handled, "k0") == [0, 1]
    lacking, unreadable = dead.buried
    assert (lacking.message.message_id, lacking.message.event_type) == ("m-1", "Counted")
    assert lacking.message.payload == b"k0:?"
    assert lacking.error.startswith("malformed message: ")
    assert "souk-key" in lacking.error
    assert unreadable.message.payload == b"k0:??"
    assert unreadable.error.startswith("malformed message: ")
    assert "placeholders" in unreadable.error
    assert (lacking.group, lacking.attempts) == ("ledger", 1)


def test_a_failed_commit_leaves_no_transaction_open(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "deferred.db", isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (parent INTEGER REFERENCES parent DEFERRABLE INITIALLY DEFERRED)"
    )
    # A deferred constraint is checked by COMMIT, which fails and (like a full disk) leaves
    # the transaction open.
    with pytest.raises(sqlite3.IntegrityError), write_transaction(db) as transaction:
        transaction.execute("INSERT INTO child VALUES (1)")

    assert not db.in_transaction
    with write_transaction(db) as transaction:
        transaction.execute("INSERT INTO parent VALUES (1)")
    db.close()
