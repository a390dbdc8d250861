"""The mesh in `souk up`: the control plane and one Envoy sidecar per instance, as more
supervised processes, and every instance's upstreams pointed at its own sidecar.

For each instance I of service S (with the mesh on):
- S's callers reach I on its sidecar's *inbound* port (mTLS; the policy decides), and the
  sidecar hands the request to I's own port on loopback;
- I's upstreams are its sidecar's *outbound* ports, one per upstream service: I finds no
  port itself, and does not balance: its sidecar balances across the callee's instances.
The gateway's public port stays what it was: it is the one entry from outside.

On several hosts (``hosts:``) the control plane runs on one of them and serves xDS over
mutual TLS at that host's address (``mesh.xds_port``); every host's sidecars present their
host's credential (made by `souk secrets`, see ``mesh.credentials``) and announce their
inbound listeners at their host's address, so callers on other hosts reach them there.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from souk.plan import HOST, InstancePlan, build_plan, env_prefix
from souk.topology import Topology

CONTROL_PLANE = "mesh"
SIDECAR_SUFFIX = "-sidecar"
# The mesh's trust domain (mesh.authority.TRUST_DOMAIN: souk does not import the mesh).
TRUST_DOMAIN = "souk.local"


class MissingMeshCredentialError(Exception):
    """Several hosts with the mesh: a credential `souk secrets` makes is not in the data dir."""


def mesh_dir(data_dir: Path) -> Path:
    return data_dir.resolve() / "mesh"


def control_plane_socket(data_dir: Path) -> Path:
    return mesh_dir(data_dir) / "xds.sock"


def admin_socket(data_dir: Path, instance: str) -> Path:
    """Where an instance's sidecar serves Envoy's admin API (only this user may connect)."""
    return mesh_dir(data_dir) / "admin" / f"{instance}.sock"


def is_sidecar(service: str) -> bool:
    return service.endswith(SIDECAR_SUFFIX)


def root_certificate(data_dir: Path) -> Path:
    return mesh_dir(data_dir) / "ca" / "root.pem"


def host_credential(data_dir: Path, host: str) -> tuple[Path, Path]:
    """A host's bootstrap credential: its certificate and key (mesh.credentials.HostCredential)."""
    directory = mesh_dir(data_dir) / "hosts" / host
    return directory / "credential.pem", directory / "credential.key"


def credential_files(topology: Topology, data_dir: Path, host: str) -> list[Path]:
    """The files a host needs before `souk up --host` with the mesh: the root certificate,
    its own credential, and on the control plane's host the root's key."""
    files = [root_certificate(data_dir), *host_credential(data_dir, host)]
    if host == topology.mesh_control_plane_host():
        files.append(mesh_dir(data_dir) / "ca" / "root.key")
    return files


def check_credentials(topology: Topology, data_dir: Path, host: str | None) -> None:
    """Several hosts with the mesh: raise MissingMeshCredentialError unless this host holds
    the credentials `souk secrets` made (copied here by the operator)."""
    if not topology.mesh.enabled or topology.hosts is None or host is None:
        return
    missing = [path for path in credential_files(topology, data_dir, host) if not path.exists()]
    if missing:
        raise MissingMeshCredentialError(
            f"the mesh on several hosts needs {', '.join(map(str, missing))}: make them once "
            "with `souk secrets` and copy them to this host (docs/multihost.md)"
        )


def _hosts_setting(topology: Topology, data_dir: Path) -> dict[str, Any]:
    """What the control plane admits from each host: its address and its instances."""
    placed: dict[str, dict[str, Any]] = {
        name: {"address": host.address, "instances": {}}
        for name, host in (topology.hosts or {}).items()
    }
    for plan in build_plan(topology, data_dir):
        placed[plan.host_name]["instances"][plan.instance] = plan.service
    return placed


def with_mesh(
    topology: Topology,
    plans: Sequence[InstancePlan],
    data_dir: Path,
    host: str | None = None,
) -> list[InstancePlan]:
    """The plans with the mesh: the control plane, a sidecar per instance, and each
    instance's upstreams rewritten to its sidecar's outbound ports. With ``host`` (several
    hosts), that host's share: the control plane only on its own host."""
    if not topology.mesh.enabled:
        return list(plans)
    several = topology.hosts is not None and host is not None
    address = topology.hosts[host].address if several and topology.hosts and host else HOST
    taken = {port for plan in plans for port in (plan.port, plan.grpc_port) if port is not None}
    # Per instance: its sidecar's inbound, ops and one outbound port per upstream.
    needed = 1 + sum(2 + len(topology.services[plan.service].upstreams) for plan in plans)
    ports = iter(_free_ports(needed, taken, address))

    def free_port() -> int:
        return next(ports)

    directory = mesh_dir(data_dir)
    (directory / "admin").mkdir(parents=True, exist_ok=True)
    logs = data_dir.resolve() / "logs"
    ops_port = free_port()
    settings = topology.mesh.control_plane_settings()
    control_plane = f"unix:{control_plane_socket(data_dir)}"
    tls: dict[str, str] | None = None
    if several and topology.hosts is not None and host is not None:
        settings["hosts"] = _hosts_setting(topology, data_dir)
        control_host = topology.mesh_control_plane_host()
        control_plane = f"{topology.hosts[control_host].address}:{topology.mesh.xds_port}"
        certificate, key = host_credential(data_dir, host)
        tls = {
            "certificate": str(certificate),
            "key": str(key),
            "trust_bundle": str(root_certificate(data_dir)),
            "server_id": f"spiffe://{TRUST_DOMAIN}/control-plane",
        }
    control = InstancePlan(
        service=CONTROL_PLANE,
        index=1,
        module="mesh",
        port=ops_port,
        env={
            "MESH_OPS_PORT": str(ops_port),
            "MESH_LISTEN": control_plane,
            "MESH_DATA_DIR": str(directory),
            "MESH_SETTINGS": json.dumps(settings),
            "PYTHONUNBUFFERED": "1",
        },
        log_path=logs / "mesh-1.log",
        host_name=host or "",
    )
    grpc_services = {name for name, spec in topology.services.items() if spec.grpc}
    runs_control_plane = not several or host == topology.mesh_control_plane_host()
    meshed: list[InstancePlan] = [control] if runs_control_plane else []
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
        sidecar: dict[str, Any] = {
            "node_id": plan.instance,
            "service": plan.service,
            "inbound_port": free_port(),
            # Callers on other hosts reach the sidecar at its host's address.
            "inbound_host": address,
            "app": f"{plan.host}:{app_port}",
            "grpc": plan.grpc_port is not None,
            "outbound": outbound,
            "control_plane": control_plane,
            "control_plane_tls": tls,
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
                host_name=plan.host_name,
            )
        )
    return meshed


def _free_ports(count: int, avoid: Iterable[int], address: str = HOST) -> list[int]:
    """Ports free now (on loopback and, several hosts, on the host's address), none of them
    already planned for an instance, none twice."""
    avoided = set(avoid)
    chosen: list[int] = []
    # Every probe socket stays open until all are chosen, so the OS cannot hand one out twice.
    with ExitStack() as stack:
        while len(chosen) < count:
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            # Bound on every address of the host: free on loopback and on the host's own.
            probe.bind(("0.0.0.0" if address != HOST else HOST, 0))
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
