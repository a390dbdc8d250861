"""What the embedded broker promises beyond the contract: a file shared by processes and runs."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from chassis.messaging import Delivery, Message, SubscribeOptions
from chassis.messaging.embedded import DATABASE, EmbeddedBus

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
    assert await bus.sweep() == 3


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

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(2.0)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall

    # About 0.4% measured here; polls that never back off (every 5 ms) cost about 12%.
    assert cpu < 0.05 * wall, f"{cpu:.3f} s of CPU in {wall:.1f} s idle"
