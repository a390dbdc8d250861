"""A consumer in a process of its own, for tests that SIGKILL it mid-burst.

Usage: python consumer_process.py URL TOPIC GROUP EFFECTS_DB [SLOW_SECONDS]

Each message's effect is a row in EFFECTS_DB keyed by message id, written in one transaction
with the record that the message was seen: the inbox pattern in miniature, so a redelivered
message has no second effect. Prints "ready" once subscribed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys

from chassis.messaging import DeadLetter, Delivery, SubscribeOptions, connect


class _NoDeadLetters:
    async def bury(self, dead_letter: DeadLetter) -> None:
        raise AssertionError(f"nothing should be dead-lettered: {dead_letter}")


async def main(url: str, topic: str, group: str, effects: str, slow: float) -> None:
    db = sqlite3.connect(effects, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS effects (message_id TEXT PRIMARY KEY, key TEXT, n INT)")
    db.execute("CREATE TABLE IF NOT EXISTS deliveries (message_id TEXT, pid INT)")

    async def handle(delivery: Delivery) -> None:
        message = delivery.message
        await asyncio.sleep(slow)
        key, n = message.payload.decode().split(":")
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO deliveries VALUES (?, ?)", (message.message_id, os.getpid()))
        db.execute(
            "INSERT OR IGNORE INTO effects VALUES (?, ?, ?)", (message.message_id, key, int(n))
        )
        db.execute("COMMIT")

    bus = connect(url)
    await bus.start()
    options = SubscribeOptions(concurrency=4, handler_timeout=5.0)
    await bus.subscribe(topic, group, handle, dead_letters=_NoDeadLetters(), options=options)
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await bus.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(*args[:4], slow=float(args[4]) if len(args) > 4 else 0.0))
