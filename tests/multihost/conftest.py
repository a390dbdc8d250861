"""Souk on four "machines": network namespaces on one private LAN (10.231.0.0/24).

    switch (bridge, .1: the test's port-forwards come from here)
     ├── a  .11  gateway, bff-web, bff-mobile, identity; the mesh's control plane :15012
     ├── b  .12  catalog-1, inventory-1, orders, notifications, payment-primary
     ├── c  .13  catalog-2, inventory-2, billing, order-history, payment-backup
     └── db .2   PostgreSQL :5432 and RabbitMQ :5672

Each app host runs `souk up --host NAME` under `ip netns exec`, with a data dir of its own
(no shared filesystem): the same installation secrets are copied into each, as a secret is
distributed to machines. The mesh is on: every instance has its Envoy sidecar, the control
plane runs on host a and serves xDS over mutual TLS at 10.231.0.11:15012; each host gets the
mesh's root certificate and its own host credential, and only host a the root's key.
Everything is kept on PostgreSQL and RabbitMQ, reached at the database host's address. That
host is the machine's own servers behind a port-forward (forward.py), not a private engine:
ADR 23 says why. Nothing is added to the machine's own network namespace; every namespace is
deleted afterwards, also when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from chassis.messaging.cleanup import forget_rabbitmq_namespaces
from souk.databases import drop
from souk.testing import SoukSystem, free_port, require_server
from souk.topology import DatabaseSpec

from .netns import Lan, NetnsUnavailableError, check_netns

SUBNET = "10.231.0"
DB_HOST = f"{SUBNET}.2"
HOSTS = {"a": 11, "b": 12, "c": 13}
GATEWAY_PORT = 8080
CONTROL_PLANE_HOST = "a"
PUBLIC_URL = f"http://{SUBNET}.{HOSTS['a']}:{GATEWAY_PORT}"
PLACEMENT: dict[str, list[str]] = {
    "gateway": ["a"],
    "bff-web": ["a"],
    "bff-mobile": ["a"],
    "identity": ["a"],
    "catalog": ["b", "c"],
    "inventory": ["b", "c"],
    "orders": ["b"],
    "notifications": ["b"],
    "payment-primary": ["b"],
    "billing": ["c"],
    "order-history": ["c"],
    "payment-backup": ["c"],
}
FORWARD = Path(__file__).with_name("forward.py")
RATE_LIMITS = {  # every request reaches the gateway from the switch's one address
    "per_ip": {"rate": 10_000, "burst": 10_000},
    "per_client": {"rate": 10_000, "burst": 10_000},
    "per_ip_expensive": {"rate": 10_000, "burst": 10_000},
}


def require_netns() -> None:
    """Skip unless network namespaces can be made here; under CI=true, fail instead."""
    try:
        check_netns()
    except (NetnsUnavailableError, FileNotFoundError) as exc:
        message = f"network namespaces are not available: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; the multi-host test is required under CI=true")
        pytest.skip(message)


def needed_on(host: str, file: Path) -> bool:
    """Which of the files `souk secrets` made a host gets (docs/multihost.md): the client
    secrets, role passwords and the mesh's root certificate everywhere; the root's key on
    the control plane's host only; a host credential on its own host only."""
    parts = file.parts
    if parts[:2] == ("mesh", "hosts"):
        return parts[2] == host
    if file == Path("mesh/ca/root.key"):
        return host == CONTROL_PLANE_HOST
    return True


def multi_host_topology(database: DatabaseSpec, namespace: str) -> dict[str, Any]:
    """The default topology, its services placed on the hosts, on the database host's
    PostgreSQL and RabbitMQ; without the console (it reads every instance's log files)."""
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    topology: dict[str, Any] = copy.deepcopy(yaml.safe_load(text))
    topology.pop("data_dir", None)
    del topology["services"]["console"]
    topology["telemetry"] = {"export_spans": False}
    topology["mesh"] = {"enabled": True, "control_plane": CONTROL_PLANE_HOST}
    topology["hosts"] = {name: {"address": f"{SUBNET}.{octet}"} for name, octet in HOSTS.items()}
    topology["database"] = database.model_dump()
    topology["broker"] = {
        "kind": "rabbitmq",
        "url": f"amqp://guest:guest@{DB_HOST}:5672/",
        "namespace": namespace,
    }
    for name, service in topology["services"].items():
        service["hosts"] = PLACEMENT[name]
        env = service.get("env", {})
        for key, value in env.items():
            if value == "http://localhost:8080":
                env[key] = PUBLIC_URL
    topology["services"]["gateway"]["port"] = GATEWAY_PORT
    topology["services"]["gateway"]["env"]["GATEWAY_RATE_LIMITS"] = RATE_LIMITS
    return topology


@dataclass
class Cluster:
    """The running multi-host system, as the test in the root namespace reaches it."""

    lan: Lan
    topology: dict[str, Any]
    systems: dict[str, SoukSystem]
    # Service → a base URL on 127.0.0.1 forwarded to its first instance on the LAN.
    forwarded: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return self.forwarded["gateway"]

    def url(self, service: str) -> str:
        return self.forwarded[service]

    def data_dir(self, host: str) -> Path:
        return self.systems[host].data_dir


def _start_all(systems: dict[str, SoukSystem]) -> None:
    # Side by side, as machines boot: all launched (from this thread, which outlives them),
    # then each waited for until every instance of its own is ready.
    for system in systems.values():
        system.launch()
    for system in systems.values():
        system.wait_started()


STOP_TIMEOUT = 45.0  # a host stops in tiers; a loaded 2-core machine took up to 16 s


def _stop_all(systems: dict[str, SoukSystem]) -> None:
    # Side by side too; each stop still checks that no process of its host is left behind.
    with ThreadPoolExecutor(len(systems)) as pool:
        futures = [pool.submit(system.stop, STOP_TIMEOUT) for system in systems.values()]
        errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error


def _forwarder(rules: list[str], log: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(FORWARD), *rules],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        process.wait()
        raise RuntimeError(f"the port-forward did not start; see {log}")
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_netns()
    require_server("PostgreSQL", "127.0.0.1", 5432)
    require_server("RabbitMQ", "127.0.0.1", 5672)
    run = secrets.token_hex(4)
    database = DatabaseSpec(
        backend="postgres",
        url=f"postgresql://postgres@{DB_HOST}:5432/postgres",
        mode="per-service",
        prefix=f"souk_mh_{run}",
    )
    namespace = f"mh{run}"
    topology = multi_host_topology(database, namespace)
    stateful = [n for n, s in topology["services"].items() if s.get("database", True)]
    directory = tmp_path_factory.mktemp("multihost")
    with contextlib.ExitStack() as stack:
        # Undone last to first: the systems stop, the forwards go, the LAN is deleted, and
        # what the run left on the servers is dropped.
        local = database.model_copy(update={"url": "postgresql://postgres@127.0.0.1:5432/postgres"})

        async def forget() -> None:  # both at once: rabbitmqctl alone takes seconds
            await asyncio.gather(
                forget_rabbitmq_namespaces("amqp://guest:guest@127.0.0.1:5672/", [namespace]),
                drop(local, stateful),
            )

        stack.callback(lambda: asyncio.run(forget()))
        lan = stack.enter_context(Lan(SUBNET))
        db = lan.add_host("db", 2)
        for host, octet in HOSTS.items():
            lan.add_host(host, octet)
        servers = _forwarder(
            [f"{db}/{DB_HOST}/5432=-/127.0.0.1/5432", f"{db}/{DB_HOST}/5672=-/127.0.0.1/5672"],
            directory / "forward-db.log",
        )
        stack.callback(_stop, servers)
        path = directory / "souk.yaml"
        path.write_text(yaml.safe_dump(topology, sort_keys=False), encoding="utf-8")
        # One installation's secrets, made once on the operator's machine and copied to the
        # hosts: each host only what it needs.
        operator = directory / "operator"
        made = subprocess.run(
            [sys.executable, "-m", "souk", "secrets", "-t", str(path), "-d", str(operator)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        files = [Path(line).relative_to(operator.resolve()) for line in made.stdout.split()]
        systems: dict[str, SoukSystem] = {}
        for host in HOSTS:
            data = directory / host / "data"
            for file in files:
                if needed_on(host, file):
                    (data / file).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(operator / file, data / file)
            systems[host] = SoukSystem(
                path,
                directory / host,
                # With the mesh each host boots twice the processes (a sidecar per instance):
                # identity took over 90 s to be ready at load average 47 on 2 cores.
                ready_timeout=150,
                extra_args=["--host", host],
                command_prefix=lan.exec_prefix(host),
            )
        stack.callback(_stop_all, systems)
        _start_all(systems)
        cluster = Cluster(lan, topology, systems)
        rules = []
        for service, host in (("gateway", "a"), ("identity", "a"), ("billing", "c")):
            port = free_port()
            target = systems[host].url(service).removeprefix("http://").replace(":", "/")
            rules.append(f"-/127.0.0.1/{port}={lan.switch}/{target}")
            cluster.forwarded[service] = f"http://127.0.0.1:{port}"
        # Inventory: its first instance's HTTP port (the stock API; gRPC is for the shop).
        inventory = systems["b"].instances("inventory")[0]
        port = free_port()
        rules.append(f"-/127.0.0.1/{port}={lan.switch}/{inventory.host}/{inventory.port}")
        cluster.forwarded["inventory"] = f"http://127.0.0.1:{port}"
        stack.callback(_stop, _forwarder(rules, directory / "forward-test.log"))
        yield cluster
