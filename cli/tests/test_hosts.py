"""Multi-host topologies: `hosts:`, each service's placement, and `souk up --host`.

Booting one on network namespaces is tests/multihost; these check the file and the plan.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from souk.plan import build_plan, on_host
from souk.topology import TopologyError, parse_topology

RunSouk = Callable[..., Any]

SERVERS = """
database: {backend: postgres, url: "postgresql://postgres@10.0.0.2:5432/postgres"}
broker: {kind: rabbitmq, url: "amqp://guest:guest@10.0.0.2:5672/"}
"""

TOPOLOGY = (
    SERVERS
    + """
hosts:
  edge: {address: 10.0.0.11}
  back: {address: 10.0.0.12, ports_from: 30000}
services:
  gateway:
    port: 8080
    hosts: [edge]
    upstreams: [catalog, inventory]
    database: false
  catalog:
    replicas: 2
    hosts: [edge, back]
    upstreams: [inventory]
  inventory:
    grpc: true
    hosts: [back]
  billing:
    port: 8080
    hosts: [back]
"""
)


def with_servers(block: str) -> str:
    """The block (a topology's hosts and services) after the database and broker lines."""
    return SERVERS.lstrip("\n") + dedent(block).lstrip("\n")


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        parse_topology(dedent(text).lstrip("\n"), "souk.yaml")
    return caught.value.problems


def test_every_instance_binds_its_hosts_address_and_is_called_there(tmp_path: Path) -> None:
    plans = build_plan(parse_topology(TOPOLOGY, "souk.yaml"), tmp_path)
    placed = {plan.instance: (plan.host_name, plan.host, plan.port) for plan in plans}
    # Ports not fixed count up from each host's ports_from (20000 by default), in file order,
    # so every host computes the same ones; a fixed port is taken on its own host only.
    assert placed == {
        "gateway-1": ("edge", "10.0.0.11", 8080),
        "catalog-1": ("edge", "10.0.0.11", 20000),
        "catalog-2": ("back", "10.0.0.12", 30000),
        "inventory-1": ("back", "10.0.0.12", 30001),
        "billing-1": ("back", "10.0.0.12", 8080),
    }
    gateway, catalog1, _, inventory, _ = plans
    assert inventory.grpc_port == 30002
    assert gateway.env["GATEWAY_HOST"] == "10.0.0.11"
    assert catalog1.env["CATALOG_HOST"] == "10.0.0.11"
    assert json.loads(gateway.env["GATEWAY_UPSTREAMS"]) == {
        "catalog": ["http://10.0.0.11:20000", "http://10.0.0.12:30000"],
        "inventory": ["grpc://10.0.0.12:30002"],
    }
    assert catalog1.url == "http://10.0.0.11:20000"


def test_every_host_plans_the_same_addresses(tmp_path: Path) -> None:
    topology = parse_topology(TOPOLOGY, "souk.yaml")
    first = build_plan(topology, tmp_path / "edge")
    again = build_plan(topology, tmp_path / "back")
    assert [(p.instance, p.host, p.port, p.grpc_port) for p in first] == [
        (p.instance, p.host, p.port, p.grpc_port) for p in again
    ]
    assert [p.env["GATEWAY_UPSTREAMS"] for p in first[:1]] == [
        p.env["GATEWAY_UPSTREAMS"] for p in again[:1]
    ]
    assert [p.instance for p in on_host(first, "back")] == ["catalog-2", "inventory-1", "billing-1"]


def test_called_services_believe_the_hosts_forwarded_headers_and_the_edge_nobodys(
    tmp_path: Path,
) -> None:
    plans = build_plan(parse_topology(TOPOLOGY, "souk.yaml"), tmp_path)
    by_instance = {plan.instance: plan.env for plan in plans}
    # The gateway calls catalog from another machine: its X-Forwarded-For is the browser's.
    assert json.loads(by_instance["catalog-2"]["CATALOG_FORWARDED_ALLOW_IPS"]) == [
        "127.0.0.1",
        "10.0.0.11",
        "10.0.0.12",
    ]
    assert "GATEWAY_FORWARDED_ALLOW_IPS" not in by_instance["gateway-1"]
    assert "BILLING_FORWARDED_ALLOW_IPS" not in by_instance["billing-1"]  # nobody calls it


def test_every_host_may_read_the_gateways_operational_routes(tmp_path: Path) -> None:
    # The supervisor probes the gateway at its host's address, not on loopback: without this
    # the gateway's /readyz would be a 404 to its own supervisor and it would never be ready.
    plans = build_plan(parse_topology(TOPOLOGY, "souk.yaml"), tmp_path)
    gateway = next(plan.env for plan in plans if plan.instance == "gateway-1")
    assert json.loads(gateway["GATEWAY_OPS_NETWORKS"]) == [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.11",
        "10.0.0.12",
    ]


def test_one_host_topologies_are_planned_as_before(tmp_path: Path) -> None:
    topology = parse_topology(
        "services:\n  gateway: {port: 8080, upstreams: [catalog]}\n  catalog: {}\n", "souk.yaml"
    )
    plans = build_plan(topology, tmp_path)
    assert {(plan.host, plan.host_name) for plan in plans} == {("127.0.0.1", "")}
    assert "CATALOG_FORWARDED_ALLOW_IPS" not in plans[1].env
    assert "GATEWAY_OPS_NETWORKS" not in plans[0].env  # loopback only, the gateway's default


def test_a_service_without_a_host_and_an_unknown_host_are_refused() -> None:
    found = problems(
        with_servers(
            """
        hosts:
          a: {address: 10.0.0.11}
        services:
          gateway: {}
          orders:
            hosts: [b]
        """
        )
    )
    assert len(found) == 2
    assert found[0].startswith("souk.yaml:6: services.gateway: the topology runs on several hosts")
    assert found[1].startswith("souk.yaml:8: services.orders.hosts[0]: unknown host 'b'")


def test_hosts_neither_one_nor_one_per_replica_are_refused() -> None:
    found = problems(
        with_servers(
            """
        hosts:
          a: {address: 10.0.0.11}
        services:
          catalog:
            replicas: 3
            hosts: [a, a]
        """
        )
    )
    assert found == [
        "souk.yaml:8: services.catalog.hosts: hosts lists 2 hosts but replicas is 3: "
        "give one host for all replicas or one per replica"
    ]


def test_several_hosts_need_servers_not_files_or_an_embedded_broker() -> None:
    found = problems(
        """
        hosts:
          a: {address: 10.0.0.11}
        mesh: on
        services:
          catalog: {hosts: [a]}
        """
    )
    by_key = {problem.split(":")[2].strip(): problem for problem in found}
    # The mesh runs across hosts (its control plane on one, over mutual TLS): not refused.
    assert set(by_key) == {"database", "broker"}
    assert "keeps its data on a server" in by_key["database"]
    assert "needs a broker server" in by_key["broker"]


def test_the_mesh_control_plane_runs_on_a_host_of_the_file() -> None:
    found = problems(
        with_servers(
            """
        hosts:
          a: {address: 10.0.0.11}
        mesh: {control_plane: z}
        services:
          catalog: {hosts: [a]}
        """
        )
    )
    assert len(found) == 1
    assert "mesh.control_plane: unknown host 'z' (hosts in this file: a)" in found[0]


def test_hosts_without_a_hosts_map_and_a_host_that_is_no_address_are_refused() -> None:
    assert problems("services:\n  catalog: {hosts: [a]}\n")[0].startswith(
        "souk.yaml:2: services.catalog.hosts: the topology names no hosts"
    )
    found = problems(
        SERVERS + "hosts:\n  a: {address: db.example}\nservices:\n  catalog: {hosts: [a]}\n"
    )
    assert found == ["souk.yaml:4: hosts.a.address: 'db.example' is not an IP address"]


def test_the_same_fixed_port_twice_on_one_host_is_refused() -> None:
    found = problems(
        with_servers(
            """
        hosts:
          a: {address: 10.0.0.11}
        services:
          gateway: {port: 8080, hosts: [a]}
          billing: {port: 8080, hosts: [a]}
        """
        )
    )
    assert len(found) == 1
    assert "port 8080 on host a is also used by gateway" in found[0]


def test_up_on_a_multi_host_topology_needs_a_known_host(run_souk: RunSouk, tmp_path: Path) -> None:
    (tmp_path / "souk.yaml").write_text(TOPOLOGY, encoding="utf-8")
    without = run_souk("up", "--data-dir", "data")
    unknown = run_souk("up", "--host", "nowhere", "--data-dir", "data")
    assert without.returncode == unknown.returncode == 1
    assert "run `souk up --host NAME` on each of them" in without.stderr
    assert "--host nowhere: no such host (hosts: edge, back)" in unknown.stderr
    assert not (tmp_path / "data").exists()


def test_up_with_a_host_on_a_one_host_topology_is_refused(
    run_souk: RunSouk, tmp_path: Path
) -> None:
    (tmp_path / "souk.yaml").write_text("services:\n  catalog: {}\n", encoding="utf-8")
    result = run_souk("up", "--host", "a", "--data-dir", "data")
    assert result.returncode == 1
    assert "--host a: the topology names no hosts" in result.stderr


def test_secrets_are_made_once_to_be_copied_to_every_host(
    run_souk: RunSouk, tmp_path: Path
) -> None:
    (tmp_path / "souk.yaml").write_text(TOPOLOGY, encoding="utf-8")
    first = run_souk("secrets", "--data-dir", "data")
    made = {Path(line).name: json.loads(Path(line).read_text()) for line in first.stdout.split()}
    again = run_souk("secrets", "--data-dir", "data")

    assert first.returncode == again.returncode == 0
    assert set(made) == {"secrets.json", "postgres-roles.json"}
    assert {"client:souk-cli", "client:orders", "client:bff-web"} <= set(made["secrets.json"])
    # Every stateful service's role, whichever host it runs on; billing keeps state too.
    assert set(made["postgres-roles.json"]) == {"souk_catalog", "souk_inventory", "souk_billing"}
    kept = {Path(line).name: json.loads(Path(line).read_text()) for line in again.stdout.split()}
    assert kept == made  # made again, nothing changes: copies stay valid
    assert not (tmp_path / "data" / "state.json").exists()


MESHED = TOPOLOGY.replace("hosts:\n  edge:", "mesh: {control_plane: back}\nhosts:\n  edge:", 1)


def test_secrets_with_the_mesh_make_its_root_and_a_credential_per_host_once(
    run_souk: RunSouk, tmp_path: Path
) -> None:
    (tmp_path / "souk.yaml").write_text(MESHED, encoding="utf-8")
    first = run_souk("secrets", "--data-dir", "data")
    made = {
        Path(line).relative_to(tmp_path / "data").as_posix(): Path(line).read_bytes()
        for line in first.stdout.split()
    }
    again = run_souk("secrets", "--data-dir", "data")

    assert first.returncode == again.returncode == 0, first.stderr
    assert {name for name in made if name.startswith("mesh/")} == {
        "mesh/ca/root.pem",
        "mesh/ca/root.key",
        "mesh/hosts/edge/credential.pem",
        "mesh/hosts/edge/credential.key",
        "mesh/hosts/back/credential.pem",
        "mesh/hosts/back/credential.key",
    }
    for name in made:
        if name.endswith(".key"):
            assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0, name
    kept = {
        Path(line).relative_to(tmp_path / "data").as_posix(): Path(line).read_bytes()
        for line in again.stdout.split()
    }
    assert kept == made  # copies already on the hosts stay valid
    assert b"spiffe://souk.local/host/back" in _san(made["mesh/hosts/back/credential.pem"])


def _san(certificate_pem: bytes) -> bytes:
    from cryptography import x509  # noqa: PLC0415 - only this test reads a certificate

    certificate = x509.load_pem_x509_certificate(certificate_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return " ".join(names.get_values_for_type(x509.UniformResourceIdentifier)).encode()


def test_up_with_the_mesh_on_a_host_without_its_credentials_is_refused(
    run_souk: RunSouk, tmp_path: Path
) -> None:
    (tmp_path / "souk.yaml").write_text(MESHED, encoding="utf-8")
    result = run_souk("up", "--host", "back", "--data-dir", "data")
    assert result.returncode == 1
    assert "the mesh on several hosts needs" in result.stderr
    assert "mesh/hosts/back/credential.pem" in result.stderr
    assert "mesh/ca/root.key" in result.stderr  # back runs the control plane
    assert "`souk secrets`" in result.stderr
    assert "nothing was started" in result.stderr
