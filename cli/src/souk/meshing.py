"""The mesh in `souk up`: the control plane and one Envoy sidecar per instance, as more
supervised processes, and every instance's upstreams pointed at its own sidecar.

For each instance I of service S (with the mesh on):
- S's callers reach I on its sidecar's *inbound* port (mTLS; the policy decides), and the
  sidecar hands the request to I's own port on loopback;
- I's upstreams are its sidecar's *outbound* ports, one per upstream service: I finds no
  port itself, and does not balance: its sidecar balances across the callee's instances.
The gateway's public port stays what it was: it is the one entry from outside.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from souk.plan import HOST, InstancePlan, env_prefix
from souk.topology import Topology

CONTROL_PLANE = "mesh"
SIDECAR_SUFFIX = "-sidecar"


def mesh_dir(data_dir: Path) -> Path:
    return data_dir.resolve() / "mesh"


def control_plane_socket(data_dir: Path) -> Path:
    return mesh_dir(data_dir) / "xds.sock"


def admin_socket(data_dir: Path, instance: str) -> Path:
    """Where an instance's sidecar serves Envoy's admin API (only this user may connect)."""
    return mesh_dir(data_dir) / "admin" / f"{instance}.sock"


def is_sidecar(service: str) -> bool:
    return service.endswith(SIDECAR_SUFFIX)


def with_mesh(
    topology: Topology, plans: Sequence[InstancePlan], data_dir: Path
) -> list[InstancePlan]:
    """The plans with the mesh: the control plane, a sidecar per instance, and each
    instance's upstreams rewritten to its sidecar's outbound ports."""
    if not topology.mesh.enabled:
        return list(plans)
    taken = {port for plan in plans for port in (plan.port, plan.grpc_port) if port is not None}
    # Per instance: its sidecar's inbound, ops and one outbound port per upstream.
    needed = 1 + sum(2 + len(topology.services[plan.service].upstreams) for plan in plans)
    ports = iter(_free_ports(needed, taken))

    def free_port() -> int:
        return next(ports)

    directory = mesh_dir(data_dir)
    (directory / "admin").mkdir(parents=True, exist_ok=True)
    logs = data_dir.resolve() / "logs"
    ops_port = free_port()
    control = InstancePlan(
        service=CONTROL_PLANE,
        index=1,
        module="mesh",
        port=ops_port,
        env={
            "MESH_OPS_PORT": str(ops_port),
            "MESH_LISTEN": f"unix:{control_plane_socket(data_dir)}",
            "MESH_DATA_DIR": str(directory),
            "MESH_SETTINGS": json.dumps(topology.mesh.control_plane_settings()),
            "PYTHONUNBUFFERED": "1",
        },
        log_path=logs / "mesh-1.log",
    )
    grpc_services = {name for name, spec in topology.services.items() if spec.grpc}
    meshed: list[InstancePlan] = [control]
    for plan in plans:
        spec = topology.services[plan.service]
        outbound = {upstream: free_port() for upstream in spec.upstreams}
        upstreams = {
            upstream: [f"{'grpc' if upstream in grpc_services else 'http'}://{HOST}:{port}"]
            for upstream, port in outbound.items()
        }
        env = dict(plan.env)
        env[f"{env_prefix(plan.service)}UPSTREAMS"] = json.dumps(upstreams)
        meshed.append(replace(plan, env=env))
        # A gRPC service's callers speak gRPC: its sidecar hands them to the gRPC port.
        app_port = plan.grpc_port if plan.grpc_port is not None else plan.port
        sidecar = {
            "node_id": plan.instance,
            "service": plan.service,
            "inbound_port": free_port(),
            "app": f"{HOST}:{app_port}",
            "grpc": plan.grpc_port is not None,
            "outbound": outbound,
            "control_plane": f"unix:{control_plane_socket(data_dir)}",
            "admin_socket": str(admin_socket(data_dir, plan.instance)),
            "ops_port": 0,
            "bootstrap_dir": str(directory / "bootstrap"),
            "log_level": topology.mesh.log_level,
        }
        ops_port = free_port()
        sidecar["ops_port"] = ops_port
        meshed.append(
            InstancePlan(
                service=f"{plan.service}{SIDECAR_SUFFIX}",
                index=plan.index,
                module="mesh.sidecar",
                port=ops_port,
                env={"MESH_SIDECAR": json.dumps(sidecar)},
                log_path=logs / f"{plan.service}{SIDECAR_SUFFIX}-{plan.index}.log",
            )
        )
    return meshed


def _free_ports(count: int, avoid: Iterable[int]) -> list[int]:
    """Ports free now, none of them already planned for an instance, none twice."""
    avoided = set(avoid)
    chosen: list[int] = []
    # Every probe socket stays open until all are chosen, so the OS cannot hand one out twice.
    with ExitStack() as stack:
        while len(chosen) < count:
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((HOST, 0))
            port = int(probe.getsockname()[1])
            if port not in avoided:
                chosen.append(port)
    return chosen


def mesh_stop_tiers(topology: Topology, tiers: list[list[str]]) -> list[list[str]]:
    """Each sidecar stops with its application (its callers, and theirs, are gone by then),
    the control plane last of all."""
    if not topology.mesh.enabled:
        return tiers
    return [
        *([*tier, *(f"{name}{SIDECAR_SUFFIX}" for name in tier)] for tier in tiers),
        [CONTROL_PLANE],
    ]
