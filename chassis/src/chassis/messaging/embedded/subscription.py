"""A subscription: one consumer of a group, with a watcher, a heartbeat and a worker per
partition it holds (each worked one message at a time)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING

from chassis.logs import get_logger
from chassis.messaging.bus import DeadLetter, DeadLetterSink, Handler, SubscribeOptions
from chassis.messaging.dispatch import dispatch
from chassis.messaging.embedded.file import BrokerFileGoneError, Commit, LeaseLostError
from chassis.messaging.message import Delivery

if TYPE_CHECKING:
    from collections.abc import Callable

    from chassis.messaging.embedded.bus import EmbeddedBus
    from chassis.messaging.embedded.file import BrokerFile, Claim, Member
    from chassis.messaging.embedded.leases import Leases

InHand = deque[tuple["BrokerFile", "Claim"]]
"""A partition worker's claimed messages not yet handled, with the file they came from."""

_log = get_logger("chassis.messaging.embedded")

FASTEST_POLL = 0.005
SLOWEST_POLL = 0.25
RETRY_AFTER_ERROR = 0.5
CLAIM_BATCH = 16
"""Messages a partition worker claims at once (in hand, handled one at a time)."""


class GroupCommit:
    """Commits of the partitions worked side by side, several in one transaction.

    A worker hands its commit in and waits for it; while one transaction is under way the
    commits that come in wait together for the next one, so a busy subscription pays one
    write of the broker file for several messages and an idle one commits at once.
    """

    def __init__(self, bus: EmbeddedBus, member: Member) -> None:
        self._bus = bus
        self._member = member
        self._pending: list[tuple[BrokerFile, Commit, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def commit(self, file: BrokerFile, commit: Commit) -> bool:
        """Commit ``commit`` in ``file``; whether the lease was still ours (else nothing moved)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((file, commit, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def settled(self) -> None:
        """Wait for the commits handed in so far (those of workers cancelled meanwhile too)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            by_file: defaultdict[BrokerFile, list[tuple[Commit, asyncio.Future[bool]]]]
            by_file = defaultdict(list)
            for file, commit, future in batch:
                by_file[file].append((commit, future))
            for file, commits in by_file.items():
                try:
                    lost = await self._bus._run(
                        file.commit, self._member, [commit for commit, _ in commits]
                    )
                except Exception as error:  # noqa: BLE001 - each waiting worker hears of it
                    for _, future in commits:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for commit, future in commits:
                    if not future.done():
                        future.set_result(commit.partition not in lost)


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
        self._commits = GroupCommit(bus, member)
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
        await cancel(self._watcher)  # first: while moving to a new file, it starts a heart
        await cancel(self._heart)
        await self._stop_workers(grace)
        await self._commits.settled()
        try:
            await self._bus._run(self._file.leave, self.member)
        except Exception as error:  # noqa: BLE001 - the leases expire by themselves
            _log.warning("could not leave the group; its leases will expire", error=str(error))
        self._bus._forget(self)

    def nudge(self) -> None:
        """Look for work now rather than at the next poll."""
        self._nudged.set()

    async def handle(
        self, partition: int, in_hand: InHand, *, keep_going: Callable[[], bool]
    ) -> bool:
        """Handle the next message of ``partition``; False once there is none.

        Messages are claimed up to ``CLAIM_BATCH`` at a time into ``in_hand`` (one transaction
        instead of one per message) and handled one by one, each committed before the next
        starts. ``keep_going()`` False once handled: the partition's last message for this worker,
        so the commit does not count the next one in hand as delivered (it goes back unstarted).
        """
        if not in_hand:
            file = self._file  # claimed and committed in the same file, even if it is replaced
            claims = await self._bus._run(file.claim, self.member, partition, limit=CLAIM_BATCH)
            in_hand.extend((file, claim) for claim in claims)
            if not in_hand:
                return False
        file, claim = in_hand.popleft()
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
        next_in_hand = bool(in_hand) and keep_going()
        if not next_in_hand:
            in_hand.clear()
        if not await self._commits.commit(file, Commit(partition, claim.offset, next_in_hand)):
            in_hand.clear()
            raise LeaseLostError
        return True

    async def put_back(self, partition: int, in_hand: InHand) -> None:
        """Uncount the next message in hand: this worker ends without starting it."""
        file, claim = in_hand[0]
        in_hand.clear()
        await self._bus._run(file.put_back, self.member, partition, claim.offset)

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
        await cancel(self._heart)
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


async def cancel(task: asyncio.Task[None] | None) -> None:
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
        in_hand: InHand = deque()
        while not self._told_to_end():
            try:
                async with self._subscription.slots:
                    if self._told_to_end():  # while it waited for a slot
                        return
                    handled = await self._subscription.handle(
                        self.partition, in_hand, keep_going=self._keeps_going
                    )
                    if not handled:
                        return
                    if in_hand and self._told_to_end():  # told after the commit counted it
                        await self._subscription.put_back(self.partition, in_hand)
            except LeaseLostError:
                raise
            except Exception as error:  # noqa: BLE001 - the file or the dead-letter sink failed
                # The message stays uncommitted: it is claimed again (attempt + 1) after a pause.
                in_hand.clear()
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

    def _keeps_going(self) -> bool:
        return not self._told_to_end()

    def _told_to_end(self) -> bool:
        return self._stopping or self.retiring
