"""The instance plan: every instance's port, command and environment (the process contract)."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from souk.topology import Topology, env_value

HOST = "127.0.0.1"
BROKER_CONNECT_TIMEOUT = 2.0


class PortInUseError(Exception):
    """A port fixed by the topology is already bound by another process."""


class BrokerUnreachableError(Exception):
    """The topology names a broker server that does not accept connections."""


@dataclass(frozen=True)
class InstancePlan:
    """Everything needed to (re)start one instance the same way every time."""

    service: str
    index: int
    module: str
    port: int
    env: Mapping[str, str] = field(repr=False)
    log_path: Path
    grpc_port: int | None = None
    # The address it binds and is called on, and (multi-host) the name of its host.
    host: str = HOST
    host_name: str = ""
    # With the mesh on, the application's Unix socket instead of a TCP port (ADR 0016); its
    # callers reach it on `port`, its sidecar's inbound port.
    socket: Path | None = None

    @property
    def socket_path(self) -> str | None:
        return str(self.socket) if self.socket is not None else None

    @property
    def instance(self) -> str:
        """The instance id, `SERVICE-i` with i starting at 1."""
        return instance_id(self.service, self.index)

    @property
    def url(self) -> str:
        """The base URL the instance serves on: host and port, or for an instance on a Unix
        socket ``http://<instance id>`` (a client sends it to the socket: ``souk.instances``)."""
        if self.socket is not None:
            return f"http://{self.instance}"
        return f"http://{_address(self.host, self.port)}"

    def command(self) -> list[str]:
        """The argv that starts the instance."""
        return [sys.executable, "-m", self.module]

    def environment(self, parent: Mapping[str, str] | None = None) -> dict[str, str]:
        """The full environment: the parent's plus the contract variables and topology env."""
        return {**(os.environ if parent is None else parent), **self.env}


def instance_id(service: str, index: int) -> str:
    """The id of the index-th (1-based) instance of a service."""
    return f"{service}-{index}"


def env_prefix(service: str) -> str:
    """The prefix of a service's contract variables, e.g. `ORDER_HISTORY_` for order-history."""
    return service.upper().replace("-", "_") + "_"


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a listening socket could bind host:port (default 127.0.0.1) right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so connections in TIME_WAIT from a previous run
        # must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port that is free on 127.0.0.1 at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def check_fixed_ports(topology: Topology) -> None:
    """Raise PortInUseError for the first fixed port that another process holds."""
    for name, spec in topology.services.items():
        for port in spec.fixed_ports() or []:
            if not port_is_free(port):
                raise PortInUseError(f"port {port} ({name}) is already in use")


def check_host_ports(plans: list[InstancePlan]) -> None:
    """Raise PortInUseError for the first port of these instances another process holds
    (multi-host: every port is fixed, by the topology or by its host's `ports_from`)."""
    for plan in plans:
        for port in (plan.port, plan.grpc_port):
            if port is not None and not port_is_free(port, plan.host):
                raise PortInUseError(
                    f"port {port} ({plan.instance}) is already in use on {plan.host}"
                )


def check_broker(topology: Topology) -> None:
    """Raise BrokerUnreachableError if a networked broker's server refuses TCP connections."""
    broker = topology.broker
    server = broker.server()
    if server is None:
        return
    host, port = server
    try:
        with socket.create_connection(server, timeout=BROKER_CONNECT_TIMEOUT):
            return
    except OSError as exc:
        raise BrokerUnreachableError(
            f"the {broker.kind} broker at {_address(host, port)} does not accept connections "
            f"({exc.strerror or exc}); start it, or change `broker:` at {topology.broker_origin}"
        ) from None


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _distinct_free_ports(count: int, avoid: set[int]) -> list[int]:
    # Keep every probe socket open until all are chosen, so the OS cannot hand out one twice.
    chosen: list[int] = []
    with ExitStack() as stack:
        while len(chosen) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
            if port not in avoid:
                chosen.append(port)
    return chosen


def build_plan(
    topology: Topology, data_dir: Path, database_urls: Mapping[str, str] | None = None
) -> list[InstancePlan]:
    """Assign ports (fixed or free) and build each instance's contract environment.

    ``database_urls`` (service → URL, from provisioning) become ``<P>DATABASE_URL``; without
    one a service keeps its own SQLite file in the data dir. A multi-host topology gets the
    plan of every instance on every host (`souk up --host` starts its host's share): each
    binds its host's address, and ports not fixed come from the host's ``ports_from``.
    """
    database_urls = database_urls or {}
    data_dir = data_dir.resolve()
    ports, grpc_ports = _host_ports(topology) if topology.hosts else _local_ports(topology)
    address = {
        name: [_host_address(topology, name, index) for index in range(1, spec.replicas + 1)]
        for name, spec in topology.services.items()
    }
    # Callers reach a gRPC service on its gRPC ports; its HTTP port serves health and metrics.
    urls = {
        name: [
            f"grpc://{_address(host, port)}"
            for host, port in zip(address[name], grpc_ports[name], strict=True)
        ]
        if name in grpc_ports
        else [
            f"http://{_address(host, port)}"
            for host, port in zip(address[name], service_ports, strict=True)
        ]
        for name, service_ports in ports.items()
    }
    telemetry = otlp_endpoint(topology, urls)
    callees = {upstream for spec in topology.services.values() for upstream in spec.upstreams}
    broker = topology.broker.settings(data_dir)
    plans: list[InstancePlan] = []
    for name, spec in topology.services.items():
        prefix = env_prefix(name)
        upstreams = json.dumps({upstream: urls[upstream] for upstream in spec.upstreams})
        for index, port in enumerate(ports[name], start=1):
            grpc_port = grpc_ports[name][index - 1] if name in grpc_ports else None
            host = address[name][index - 1]
            env = {
                "SOUK_SERVICE": name,
                f"{prefix}INSTANCE": instance_id(name, index),
                f"{prefix}HOST": host,
                f"{prefix}PORT": str(port),
                f"{prefix}DATA_DIR": str(data_dir),
                f"{prefix}UPSTREAMS": upstreams,
                **broker.env(prefix),
                **({f"{prefix}GRPC_PORT": str(grpc_port)} if grpc_port else {}),
                **({f"{prefix}DATABASE_URL": database_urls[name]} if name in database_urls else {}),
                "PYTHONUNBUFFERED": "1",
                **({f"{prefix}OTLP_ENDPOINT": telemetry} if telemetry else {}),
                **(_trusted_proxies(topology, prefix) if name in callees else {}),
                **_ops_networks(topology, prefix),
                **{key: env_value(value) for key, value in spec.env.items()},
            }
            plans.append(
                InstancePlan(
                    service=name,
                    index=index,
                    module=topology.module_of(name),
                    port=port,
                    env=env,
                    log_path=data_dir / "logs" / f"{instance_id(name, index)}.log",
                    grpc_port=grpc_port,
                    host=host,
                    host_name=topology.host_of(name, index),
                )
            )
    return plans


def on_host(plans: list[InstancePlan], host_name: str) -> list[InstancePlan]:
    """The instances a multi-host topology places on one host."""
    return [plan for plan in plans if plan.host_name == host_name]


def _local_ports(topology: Topology) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    # One host: ports not fixed are free ones on 127.0.0.1 now.
    fixed = {port for spec in topology.services.values() for port in spec.fixed_ports() or []}
    needed = sum(spec.replicas for spec in topology.services.values() if spec.fixed_ports() is None)
    needed += sum(spec.replicas for spec in topology.services.values() if spec.grpc)
    free = iter(_distinct_free_ports(needed, fixed))
    ports = {
        name: spec.fixed_ports() or [next(free) for _ in range(spec.replicas)]
        for name, spec in topology.services.items()
    }
    grpc_ports = {
        name: [next(free) for _ in range(spec.replicas)]
        for name, spec in topology.services.items()
        if spec.grpc
    }
    return ports, grpc_ports


def _host_ports(topology: Topology) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    # Several hosts: every host must know every other host's ports without asking it, so the
    # ports not fixed are counted up from each host's `ports_from` in topology order.
    hosts = topology.hosts or {}
    fixed: dict[str, set[int]] = {name: set() for name in hosts}
    for name, spec in topology.services.items():
        for index, port in enumerate(spec.fixed_ports() or [], start=1):
            fixed[topology.host_of(name, index)].add(port)
    following = {name: host.ports_from for name, host in hosts.items()}

    def next_port(host: str) -> int:
        while following[host] in fixed[host]:
            following[host] += 1
        following[host] += 1
        return following[host] - 1

    ports: dict[str, list[int]] = {}
    grpc_ports: dict[str, list[int]] = {}
    for name, spec in topology.services.items():
        instances = range(1, spec.replicas + 1)
        given = spec.fixed_ports()
        ports[name] = given or [next_port(topology.host_of(name, i)) for i in instances]
        if spec.grpc:
            grpc_ports[name] = [next_port(topology.host_of(name, i)) for i in instances]
    return ports, grpc_ports


def _host_address(topology: Topology, service: str, index: int) -> str:
    host = topology.host_of(service, index)
    return topology.hosts[host].address if topology.hosts and host else HOST


def _ops_networks(topology: Topology, prefix: str) -> dict[str, str]:
    # The gateway's /healthz, /readyz and /metrics answer loopback only by default; on several
    # hosts the supervisor probes each instance at its host's address, and Prometheus and
    # `souk resilience` may run on another host: every host of the system may read them.
    if not topology.hosts:
        return {}
    networks = ["127.0.0.0/8", "::1/128", *(host.address for host in topology.hosts.values())]
    return {f"{prefix}OPS_NETWORKS": json.dumps(list(dict.fromkeys(networks)))}


def _trusted_proxies(topology: Topology, prefix: str) -> dict[str, str]:
    # A service called by others believes the X-Forwarded-For of the system's own processes:
    # on several hosts, those of every host (the gateway's among them), not loopback only.
    if not topology.hosts:
        return {}
    addresses = [HOST, *(host.address for host in topology.hosts.values())]
    return {f"{prefix}FORWARDED_ALLOW_IPS": json.dumps(list(dict.fromkeys(addresses)))}


CONSOLE = "console"


def otlp_endpoint(topology: Topology, urls: Mapping[str, list[str]]) -> str | None:
    """Where the processes send their spans: the topology's endpoint, else its console."""
    telemetry = topology.telemetry
    if not telemetry.export_spans:
        return None
    if telemetry.otlp_endpoint:
        return telemetry.otlp_endpoint
    if urls.get(CONSOLE):
        return urls[CONSOLE][0]
    return None


def stop_order(topology: Topology) -> list[list[str]]:
    """Services in tiers to stop one after another: callers before the services they call,
    and the console in the last tier, so the spans the others send as they stop reach it."""
    remaining = {name: spec for name, spec in topology.services.items() if name != CONSOLE}
    tiers: list[list[str]] = []
    while remaining:
        called = {up for spec in remaining.values() for up in spec.upstreams if up in remaining}
        tier = [name for name in remaining if name not in called]
        if not tier:  # a cycle of calls: no safe order, stop the rest together
            tier = list(remaining)
        tiers.append(tier)
        for name in tier:
            del remaining[name]
    if CONSOLE in topology.services:
        # With the last tier rather than after it: stopping takes no longer for it.
        if tiers:
            tiers[-1].append(CONSOLE)
        else:
            tiers.append([CONSOLE])
    return tiers
