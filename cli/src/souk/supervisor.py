"""Running instances as child processes: start, readiness, restart with backoff, shutdown."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from souk.display import Reporter
from souk.health import probe_health, probe_readiness
from souk.logs import tail_lines
from souk.plan import InstancePlan
from souk.state import Health, InstanceRecord, InstanceState, SoukState, now_iso, write_state

_PR_SET_PDEATHSIG = 1
# SIGHUP too: closing the terminal must stop the children, not orphan them.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LOG_TAIL_LINES = 20
_MAX_FAILURES_SHOWN = 3


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts, forgotten once an instance stays up long enough."""

    initial: float = 0.5
    maximum: float = 10.0
    reset_after: float = 30.0

    def next_delay(self, previous: float | None, uptime: float) -> float:
        """The wait before the next restart, given the previous wait and how long it ran."""
        if previous is None or uptime >= self.reset_after:
            return self.initial
        return min(previous * 2, self.maximum)


@dataclass(frozen=True)
class SupervisorOptions:
    """Timings of the supervisor; the defaults are those of `souk up`."""

    ready_timeout: float = 60.0
    grace: float = 15.0
    restart: RestartPolicy = RestartPolicy()
    ready_poll: float = 0.2
    health_poll: float = 2.0
    # Exits before the first readiness that make `up` give up instead of waiting for the timeout.
    startup_exit_limit: int = 3


def describe_exit(returncode: int) -> str:
    """`exited with code N` or `was killed by SIGNAME`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def child_setup() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGTERM when the orchestrator dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolve prctl before forking: the child must not load libraries between fork and exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def setup() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the orchestrator died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return setup


class Instance:
    """One instance's live process and what the orchestrator knows about it."""

    def __init__(self, plan: InstancePlan) -> None:
        self.plan = plan
        self.process: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.state = InstanceState.STARTING
        self.health = Health.UNKNOWN
        self.restarts = 0
        self.started_at: str | None = None
        self.spawned_at = 0.0
        self.ever_ready = False
        self.exits_before_ready = 0

    @property
    def name(self) -> str:
        """The instance id."""
        return self.plan.instance

    @property
    def running(self) -> bool:
        """Whether its process exists and has not been reaped."""
        return self.process is not None and self.process.returncode is None

    def record(self) -> InstanceRecord:
        """The instance as written in the state file."""
        return InstanceRecord(
            service=self.plan.service,
            instance=self.name,
            pid=self.pid,
            port=self.plan.port,
            host=self.plan.host,
            url=self.plan.url,
            state=self.state,
            health=self.health,
            restarts=self.restarts,
            started_at=self.started_at,
            log=str(self.plan.log_path),
            grpc_port=self.plan.grpc_port,
            socket=self.plan.socket_path,
        )


def _where(plan: InstancePlan) -> str:
    if plan.socket is not None:
        return f"socket {plan.socket}, mesh port {plan.port}"
    return f"port {plan.port}"


ReporterFactory = Callable[[Callable[[], list[InstanceRecord]]], Reporter]


class Supervisor:
    """Starts every planned instance, keeps them running, and stops them all on a signal."""

    def __init__(
        self,
        plans: Sequence[InstancePlan],
        *,
        stop_tiers: Sequence[Sequence[str]],
        topology_path: Path,
        data_dir: Path,
        reporter_factory: ReporterFactory,
        options: SupervisorOptions | None = None,
    ) -> None:
        self.instances = [Instance(plan) for plan in plans]
        self.options = options or SupervisorOptions()
        self.reporter = reporter_factory(self.records)
        self._tiers = [list(tier) for tier in stop_tiers]
        self._data_dir = data_dir.resolve()
        self._topology_path = topology_path
        self._started_at = now_iso()
        self._shutting_down = asyncio.Event()
        self._startup_done = False
        self._stop_requested = asyncio.Event()
        self._kill_now = asyncio.Event()
        self._child_setup = child_setup()
        self._state_unwritable = False

    def records(self) -> list[InstanceRecord]:
        """A snapshot of every instance, for the state file and the table."""
        return [instance.record() for instance in self.instances]

    def request_stop(self) -> None:
        """Begin a graceful shutdown; asked a second time, kill the children at once."""
        if self._stop_requested.is_set():
            self._kill_now.set()
        self._stop_requested.set()

    async def run(self) -> int:
        """Run until a signal (exit code 0) or until startup fails (exit code 1)."""
        loop = asyncio.get_running_loop()
        for signum in _STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._save()
        self.reporter.start()
        keepers = [asyncio.create_task(self._keep_alive(i)) for i in self.instances]
        watchers = [asyncio.create_task(self._watch(i)) for i in self.instances]
        for task in (*keepers, *watchers):
            task.add_done_callback(self._on_task_done)
        failure: str | None = None
        try:
            failure = await self._wait_ready()
            if failure is None and not self._stop_requested.is_set():
                self._startup_done = True
                self.reporter.all_ready()
                await self._stop_requested.wait()
        finally:
            if failure is not None:
                self.reporter.problem(failure)
            await self._shutdown(keepers, watchers)
            self.reporter.event("souk", "every instance stopped")
            for signum in _STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            self.reporter.stop()
        return 1 if failure is not None else 0

    def _on_signal(self, signum: int) -> None:
        if self._stop_requested.is_set():
            self.reporter.event("souk", "stopping now: killing every instance")
        else:
            name = signal.Signals(signum).name
            self.reporter.event("souk", f"got {name}, stopping (press Ctrl-C again to kill now)")
        self.request_stop()

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        # A keeper or watcher that dies stops supervising its instance: never silently.
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        self.reporter.problem(f"souk up failed while supervising: {error!r}; stopping everything")
        self.request_stop()

    def _save(self, stopped: bool = False) -> None:
        state = SoukState(
            pid=os.getpid(),
            started_at=self._started_at,
            topology=str(self._topology_path),
            data_dir=str(self._data_dir),
            instances=self.records(),
            stopped_at=now_iso() if stopped else None,
        )
        try:
            write_state(self._data_dir, state)
        except OSError as exc:
            # Supervision goes on without it; only status, down and the tests go blind.
            if not self._state_unwritable:
                self.reporter.problem(
                    f"cannot write the state file in {self._data_dir} ({exc}); instances are "
                    "still supervised, but `souk status` and `souk down` cannot see them"
                )
            self._state_unwritable = True
        else:
            self._state_unwritable = False

    async def _wait_ready(self) -> str | None:
        """None once all are ready (or a stop was asked); otherwise why startup failed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.ready_timeout
        while not self._stop_requested.is_set():
            if all(instance.state is InstanceState.READY for instance in self.instances):
                return None
            failed = [i for i in self.instances if i.state is InstanceState.FAILED]
            if failed:
                return self._failure_report(failed, "could not be started")
            if loop.time() >= deadline:
                late = [i for i in self.instances if i.state is not InstanceState.READY]
                timeout = f"{self.options.ready_timeout:g}s"
                return self._failure_report(late, f"did not become ready within {timeout}")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), self.options.ready_poll / 2)
        return None

    def _failure_report(self, failed: list[Instance], what: str) -> str:
        lines: list[str] = []
        for instance in failed[:_MAX_FAILURES_SHOWN]:
            lines.append(
                f"error: {instance.name} {what} "
                f"(state {instance.state.value}, health {instance.health.value}, "
                f"restarts {instance.restarts})"
            )
            tail = tail_lines(instance.plan.log_path, _LOG_TAIL_LINES)
            if tail:
                lines.append(f"last lines of {instance.plan.log_path}:")
                lines.extend(f"  {line}" for line in tail)
            else:
                lines.append(f"{instance.plan.log_path} is empty")
        if len(failed) > _MAX_FAILURES_SHOWN:
            others = ", ".join(i.name for i in failed[_MAX_FAILURES_SHOWN:])
            lines.append(f"also not ready: {others}")
        lines.append("souk up is giving up: stopping every instance")
        return "\n".join(lines)

    async def _spawn(self, instance: Instance) -> asyncio.subprocess.Process | None:
        plan = instance.plan
        plan.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with plan.log_path.open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *plan.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=plan.environment(),
                    # Own session: a terminal's Ctrl-C reaches only the orchestrator, which then
                    # stops the children in order.
                    start_new_session=True,
                    # Safe despite threads: it only calls prctl, getppid and kill.
                    preexec_fn=self._child_setup,
                )
        except OSError as exc:
            instance.state = InstanceState.FAILED
            instance.health = Health.DOWN
            self.reporter.event(instance.name, f"could not be started: {exc}")
            self._save()
            return None
        instance.process = process
        instance.pid = process.pid
        instance.state = InstanceState.STARTING
        instance.health = Health.UNKNOWN
        instance.started_at = now_iso()
        instance.spawned_at = asyncio.get_running_loop().time()
        self.reporter.event(instance.name, f"started (pid {process.pid}, {_where(plan)})")
        self._save()
        if self._shutting_down.is_set():  # spawned while shutdown was already signalling the others
            with suppress(ProcessLookupError):
                process.terminate()
        return process

    async def _keep_alive(self, instance: Instance) -> None:
        loop = asyncio.get_running_loop()
        delay: float | None = None
        while not self._shutting_down.is_set():
            process = await self._spawn(instance)
            if process is None:
                return
            returncode = await process.wait()
            uptime = loop.time() - instance.spawned_at
            instance.health = Health.DOWN
            if self._shutting_down.is_set():
                instance.state = InstanceState.STOPPED
                self.reporter.event(instance.name, f"stopped ({describe_exit(returncode)})")
                self._save()
                return
            instance.pid = None
            instance.started_at = None
            if not instance.ever_ready and not self._startup_done:
                instance.exits_before_ready += 1
                if instance.exits_before_ready >= self.options.startup_exit_limit:
                    instance.state = InstanceState.FAILED
                    self.reporter.event(
                        instance.name,
                        f"exited {instance.exits_before_ready} times before becoming ready "
                        f"(last: {describe_exit(returncode)}); giving up",
                    )
                    self._save()
                    return
            delay = self.options.restart.next_delay(delay, uptime)
            instance.state = InstanceState.RESTARTING
            self.reporter.event(
                instance.name, f"{describe_exit(returncode)}; restarting in {delay:g}s"
            )
            self._save()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), delay)
            if self._shutting_down.is_set() or self._stop_requested.is_set():
                instance.state = InstanceState.STOPPED
                self._save()
                return
            instance.restarts += 1

    async def _watch(self, instance: Instance) -> None:
        """Probe readiness quickly while starting, then health every second."""
        while not self._shutting_down.is_set():
            process = instance.process
            if process is not None and process.returncode is None:
                if instance.state is InstanceState.STARTING:
                    await self._probe_starting(instance, process)
                elif instance.state is InstanceState.READY:
                    await self._probe_ready(instance, process)
            starting = instance.state is not InstanceState.READY
            interval = self.options.ready_poll if starting else self.options.health_poll
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop_requested.wait(), interval)

    async def _probe_starting(
        self, instance: Instance, process: asyncio.subprocess.Process
    ) -> None:
        health = await probe_readiness(
            instance.plan.port, instance.plan.host, instance.plan.socket_path
        )
        # The process may have died or been replaced while the probe was in flight.
        if instance.process is not process or instance.state is not InstanceState.STARTING:
            return
        if health is Health.OK:
            instance.state = InstanceState.READY
            instance.health = health
            instance.ever_ready = True
            self.reporter.event(instance.name, "ready")
            self._save()
        elif health is not instance.health:
            instance.health = health
            self._save()

    async def _probe_ready(self, instance: Instance, process: asyncio.subprocess.Process) -> None:
        health = await probe_health(
            instance.plan.port, instance.plan.host, instance.plan.socket_path
        )
        if instance.process is not process or instance.state is not InstanceState.READY:
            return
        if health is not instance.health:
            instance.health = health
            self.reporter.event(instance.name, f"health {health.value}")
            self._save()

    async def _shutdown(
        self, keepers: list[asyncio.Task[None]], watchers: list[asyncio.Task[None]]
    ) -> None:
        self._shutting_down.set()
        self._stop_requested.set()
        for task in watchers:
            task.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.grace
        for tier in self._tiers:
            # Each tier gets the whole grace period: callers stop first, then what they call.
            deadline = loop.time() + self.options.grace
            members = [i for i in self.instances if i.plan.service in tier and i.running]
            for instance in members:
                self._signal(instance, signal.SIGTERM)
            await self._wait_exited(members, deadline)
        stragglers = [i for i in self.instances if i.running]
        for instance in stragglers:
            why = (
                "killing now"
                if self._kill_now.is_set()
                else f"still running after {self.options.grace:g}s"
            )
            self.reporter.event(instance.name, f"{why}; sending SIGKILL")
            self._signal(instance, signal.SIGKILL)
        # A keeper that was mid-spawn when shutdown began may have started one more process.
        while not all(task.done() for task in keepers):
            await asyncio.wait(keepers, timeout=1.0)
            for instance in self.instances:
                if instance.running and (self._kill_now.is_set() or loop.time() > deadline):
                    self._signal(instance, signal.SIGKILL)
        await asyncio.gather(*keepers, *watchers, return_exceptions=True)
        for instance in self.instances:
            instance.state = InstanceState.STOPPED
            instance.health = Health.DOWN
        self._save(stopped=True)

    @staticmethod
    def _signal(instance: Instance, signum: signal.Signals) -> None:
        # Through asyncio's Process: it refuses to signal a pid it has already reaped, so a
        # recycled pid can never be hit.
        if instance.process is not None:
            with suppress(ProcessLookupError):
                instance.process.send_signal(signum)

    async def _wait_exited(self, members: list[Instance], deadline: float) -> None:
        processes = [i.process for i in members if i.process is not None]
        if not processes:
            return
        loop = asyncio.get_running_loop()
        exited = asyncio.gather(*(process.wait() for process in processes))
        interrupted = asyncio.ensure_future(self._kill_now.wait())
        waiters: set[asyncio.Future[Any]] = {exited, interrupted}
        try:
            await asyncio.wait(
                waiters,
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            interrupted.cancel()
            exited.cancel()
            with suppress(asyncio.CancelledError):
                await exited
