"""What `up`, `down` and `status` do, from preflight checks to the supervisor, without the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from souk.databases import ensure_role_passwords, provision
from souk.display import make_reporter
from souk.health import probe_all
from souk.install_secrets import ensure_secrets, with_secrets
from souk.meshing import check_credentials, mesh_dir, mesh_stop_tiers, with_mesh
from souk.plan import (
    build_plan,
    check_broker,
    check_fixed_ports,
    check_host_ports,
    on_host,
    stop_order,
)
from souk.prometheus import prometheus_beside
from souk.state import (
    AlreadyRunningError,
    InstanceRecord,
    OrchestratorLock,
    SoukState,
    already_running_message,
    orchestrator_running,
    pid_alive,
    read_state,
)
from souk.supervisor import Supervisor, SupervisorOptions
from souk.topology import (
    DEFAULT_DATA_DIR,
    DEFAULT_TOPOLOGY_NAME,
    Topology,
    TopologyError,
    load_topology,
    resolve_topology,
)


class NotRunningError(Exception):
    """No live orchestrator owns the data dir."""


class StillRunningError(Exception):
    """The orchestrator did not exit within the time given to it."""


@dataclass(frozen=True)
class UpRequest:
    """The options of `souk up`."""

    topology: Path | None = None
    data_dir: Path | None = None
    ready_timeout: float = 60.0
    grace: float = 15.0
    # Multi-host topologies: the host whose share this `souk up` runs.
    host: str | None = None


def resolve_data_dir(option: Path | None, topology: Topology | None, cwd: Path) -> Path:
    """The absolute data dir: the option, else the topology's `data_dir`, else `.souk`."""
    chosen = option or Path((topology.data_dir if topology else None) or DEFAULT_DATA_DIR)
    return (cwd / chosen).resolve()


def data_dir_for_inspection(option: Path | None, cwd: Path) -> Path:
    """The data dir for down/status/logs: the option, else the local topology's, else `.souk`."""
    local = cwd / DEFAULT_TOPOLOGY_NAME
    topology = None
    if option is None and local.is_file():
        try:
            topology = load_topology(local)
        except TopologyError:
            topology = None  # `up` would refuse this file; the default data dir is the best guess
    return resolve_data_dir(option, topology, cwd)


def _load(option: Path | None, cwd: Path) -> tuple[Path, bool, str, Topology]:
    path, is_default = resolve_topology(option, cwd)
    shown = str(option) if option else DEFAULT_TOPOLOGY_NAME
    if option is not None and not path.is_file():
        raise TopologyError([f"{shown}: no such topology file"])
    return (
        path,
        is_default,
        shown,
        load_topology(path, display_name=str(path) if is_default else shown),
    )


def make_secrets(
    topology_option: Path | None, data_dir_option: Path | None, cwd: Path
) -> list[Path]:
    """Make the installation's secrets (client secrets, database role passwords) in the data
    dir without starting anything: the files every host of a multi-host topology needs the
    same copy of. Existing secrets are kept."""
    _, _, _, topology = _load(topology_option, cwd)
    data_dir = resolve_data_dir(data_dir_option, topology, cwd)
    made = [ensure_secrets(topology, data_dir)]
    stateful = [name for name, spec in topology.services.items() if spec.database]
    if topology.database.backend == "postgres" and stateful:
        made.append(ensure_role_passwords(topology.database, stateful, data_dir))
    if topology.mesh.enabled and topology.hosts:
        made += _mesh_credentials(topology, data_dir)
    return made


def _mesh_credentials(topology: Topology, data_dir: Path) -> list[Path]:
    """The mesh's root and a credential per host, made by the mesh's own command (souk does
    not import the mesh: it runs it, as it runs every other unit)."""
    made = subprocess.run(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "mesh.credentials",
            "--dir",
            str(mesh_dir(data_dir)),
            *(topology.hosts or {}),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [Path(line) for line in made.stdout.split()]


def up(request: UpRequest, cwd: Path | None = None) -> int:
    """Check everything, then start and supervise every instance until a signal; exit code."""
    cwd = cwd or Path.cwd()
    path, is_default, shown, topology = _load(request.topology, cwd)
    data_dir = resolve_data_dir(request.data_dir, topology, cwd)
    if orchestrator_running(read_state(data_dir)):
        raise AlreadyRunningError(already_running_message(data_dir))
    here = _services_here(topology, request.host, shown, data_dir)
    check_broker(topology)
    with OrchestratorLock(data_dir):
        stateful = [name for name, spec in topology.services.items() if spec.database]
        stateful = [name for name in stateful if name in here]
        database_urls = asyncio.run(provision(topology.database, stateful, data_dir))
        plans = build_plan(topology, data_dir, database_urls)
        if request.host is not None:
            plans = on_host(plans, request.host)
        plans = with_secrets(plans, topology, data_dir)
        plans = with_mesh(topology, plans, data_dir, request.host)
        gateway = next((plan for plan in plans if plan.service == "gateway"), None)
        shown_host = "localhost" if request.host is None else gateway.host if gateway else ""
        url = f"http://{shown_host}:{gateway.port}" if gateway else None
        options = SupervisorOptions(ready_timeout=request.ready_timeout, grace=request.grace)

        async def supervise() -> int:
            supervisor = Supervisor(
                plans,
                stop_tiers=mesh_stop_tiers(topology, stop_order(topology)),
                topology_path=path.resolve(),
                data_dir=data_dir,
                reporter_factory=lambda snapshot: make_reporter(snapshot, url),
                options=options,
            )
            where = "the default topology" if is_default else str(path)
            supervisor.reporter.event(
                "souk", f"starting {len(plans)} instances from {where}; data in {data_dir}"
            )
            async with prometheus_beside(
                topology.telemetry,
                plans,
                data_dir,
                lambda message: supervisor.reporter.event("souk", message),
            ):
                return await supervisor.run()

        return asyncio.run(supervise())


def _services_here(topology: Topology, host: str | None, shown: str, data_dir: Path) -> set[str]:
    """The services this `souk up` runs instances of (all, or one host's), once the ports
    they take are checked free."""
    if topology.hosts is None:
        if host is not None:
            raise TopologyError([f"{shown}: --host {host}: the topology names no hosts"])
        check_fixed_ports(topology)
        return set(topology.services)
    if host is None:
        raise TopologyError(
            [
                f"{shown}: the topology places services on hosts ({', '.join(topology.hosts)}): "
                "run `souk up --host NAME` on each of them"
            ]
        )
    if host not in topology.hosts:
        raise TopologyError(
            [f"{shown}: --host {host}: no such host (hosts: {', '.join(topology.hosts)})"]
        )
    check_credentials(topology, data_dir, host)
    local = on_host(build_plan(topology, data_dir), host)
    check_host_ports(local)
    return {plan.service for plan in local}


def running_state(data_dir: Path) -> SoukState:
    """The state of the live orchestrator on data_dir, or NotRunningError."""
    state = read_state(data_dir)
    if state is None or not orchestrator_running(state):
        raise NotRunningError(f"souk is not running (data dir {data_dir})")
    return state


def live_status(data_dir: Path) -> SoukState:
    """The state file with every instance's health probed now."""
    state = running_state(data_dir)
    healths = asyncio.run(probe_all([(record.host, record.port) for record in state.instances]))
    instances: list[InstanceRecord] = [
        record.model_copy(update={"health": health})
        for record, health in zip(state.instances, healths, strict=True)
    ]
    return state.model_copy(update={"instances": instances})


def down(data_dir: Path, timeout: float = 30.0) -> SoukState:
    """SIGTERM the orchestrator on data_dir and wait until it has exited."""
    state = running_state(data_dir)
    with contextlib.suppress(ProcessLookupError):  # it exited between the check and now
        os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(state.pid):
        if time.monotonic() >= deadline:
            raise StillRunningError(
                f"souk (pid {state.pid}) is still stopping after {timeout:g}s; "
                "run `souk down` again to make it kill its instances now"
            )
        time.sleep(0.1)
    return state
