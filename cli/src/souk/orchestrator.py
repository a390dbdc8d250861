"""What `up`, `down` and `status` do, from preflight checks to the supervisor, without the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from souk.databases import provision
from souk.display import make_reporter
from souk.health import probe_all
from souk.install_secrets import with_secrets
from souk.meshing import mesh_stop_tiers, with_mesh
from souk.plan import build_plan, check_broker, check_fixed_ports, stop_order
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


def up(request: UpRequest, cwd: Path | None = None) -> int:
    """Check everything, then start and supervise every instance until a signal; exit code."""
    cwd = cwd or Path.cwd()
    path, is_default = resolve_topology(request.topology, cwd)
    shown = str(request.topology) if request.topology else DEFAULT_TOPOLOGY_NAME
    if request.topology is not None and not path.is_file():
        raise TopologyError([f"{shown}: no such topology file"])
    topology = load_topology(path, display_name=str(path) if is_default else shown)
    data_dir = resolve_data_dir(request.data_dir, topology, cwd)
    if orchestrator_running(read_state(data_dir)):
        raise AlreadyRunningError(already_running_message(data_dir))
    check_fixed_ports(topology)
    check_broker(topology)
    with OrchestratorLock(data_dir):
        stateful = [name for name, spec in topology.services.items() if spec.database]
        database_urls = asyncio.run(provision(topology.database, stateful, data_dir))
        plans = with_secrets(build_plan(topology, data_dir, database_urls), topology, data_dir)
        plans = with_mesh(topology, plans, data_dir)
        gateway = next((plan for plan in plans if plan.service == "gateway"), None)
        url = f"http://localhost:{gateway.port}" if gateway else None
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


def running_state(data_dir: Path) -> SoukState:
    """The state of the live orchestrator on data_dir, or NotRunningError."""
    state = read_state(data_dir)
    if state is None or not orchestrator_running(state):
        raise NotRunningError(f"souk is not running (data dir {data_dir})")
    return state


def live_status(data_dir: Path) -> SoukState:
    """The state file with every instance's health probed now."""
    state = running_state(data_dir)
    healths = asyncio.run(probe_all([record.port for record in state.instances]))
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
