"""`mesh: on` in the topology: the plans `souk up` runs."""

from __future__ import annotations

import json
from pathlib import Path

from souk.meshing import mesh_stop_tiers, with_mesh
from souk.plan import build_plan, stop_order
from souk.topology import parse_topology

TOPOLOGY = """
mesh: {mesh}
services:
  gateway:
    port: {gateway}
    upstreams: [catalog, inventory]
  catalog:
    replicas: 2
  inventory:
    grpc: true
"""


def _plans(tmp_path: Path, mesh: str):  # type: ignore[no-untyped-def]
    topology = parse_topology(TOPOLOGY.format(mesh=mesh, gateway=18080), "souk.yaml")
    return topology, with_mesh(topology, build_plan(topology, tmp_path), tmp_path)


def test_mesh_off_runs_the_plans_as_they_were(tmp_path: Path) -> None:
    topology, plans = _plans(tmp_path, "off")
    assert [p.instance for p in plans] == ["gateway-1", "catalog-1", "catalog-2", "inventory-1"]
    assert mesh_stop_tiers(topology, stop_order(topology)) == stop_order(topology)


def test_mesh_on_adds_the_control_plane_and_a_sidecar_per_instance(tmp_path: Path) -> None:
    _, plans = _plans(tmp_path, "on")
    assert [p.instance for p in plans] == [
        "mesh-1",
        "gateway-1",
        "gateway-sidecar-1",
        "catalog-1",
        "catalog-sidecar-1",
        "catalog-2",
        "catalog-sidecar-2",
        "inventory-1",
        "inventory-sidecar-1",
    ]
    ports = [p.port for p in plans] + [p.grpc_port for p in plans if p.grpc_port]
    sidecars = [json.loads(p.env["MESH_SIDECAR"]) for p in plans if "MESH_SIDECAR" in p.env]
    ports += [s["inbound_port"] for s in sidecars]
    ports += [port for s in sidecars for port in s["outbound"].values()]
    assert len(ports) == len(set(ports)), "a port is planned twice"


def test_an_instance_calls_its_upstreams_on_its_own_sidecar(tmp_path: Path) -> None:
    _, plans = _plans(tmp_path, "on")
    by_instance = {p.instance: p for p in plans}
    gateway = by_instance["gateway-1"]
    sidecar = json.loads(by_instance["gateway-sidecar-1"].env["MESH_SIDECAR"])
    upstreams = json.loads(gateway.env["GATEWAY_UPSTREAMS"])
    assert upstreams == {
        "catalog": [f"http://127.0.0.1:{sidecar['outbound']['catalog']}"],
        "inventory": [f"grpc://127.0.0.1:{sidecar['outbound']['inventory']}"],
    }
    # The public port is the gateway's own, unchanged.
    assert gateway.port == 18080
    # A gRPC instance's sidecar hands calls to its gRPC port.
    inventory = by_instance["inventory-1"]
    inventory_sidecar = json.loads(by_instance["inventory-sidecar-1"].env["MESH_SIDECAR"])
    assert inventory_sidecar["app"] == f"127.0.0.1:{inventory.grpc_port}"
    assert inventory_sidecar["grpc"] is True


def test_each_sidecar_stops_with_its_instance_and_the_control_plane_last(tmp_path: Path) -> None:
    topology, _ = _plans(tmp_path, "on")
    tiers = mesh_stop_tiers(topology, stop_order(topology))
    assert tiers[0] == ["gateway", "gateway-sidecar"]
    assert tiers[-1] == ["mesh"]


def test_the_mesh_section_takes_its_settings(tmp_path: Path) -> None:
    topology = parse_topology(
        TOPOLOGY.format(
            mesh="{svid_lifetime: 30, traffic: {catalog: {lb_policy: ring_hash}}}", gateway=18080
        ),
        "souk.yaml",
    )
    assert topology.mesh.enabled
    settings = topology.mesh.control_plane_settings()
    assert settings["svid_lifetime"] == 30
    assert settings["traffic"] == {"catalog": {"lb_policy": "ring_hash"}}
    assert "policy" not in settings  # the shipped one


SEVERAL_HOSTS = """
database: {backend: postgres, url: "postgresql://postgres@10.0.0.2:5432/postgres"}
broker: {kind: rabbitmq, url: "amqp://guest:guest@10.0.0.2:5672/"}
mesh: on
hosts:
  a: {address: 10.0.0.11}
  b: {address: 10.0.0.12}
services:
  gateway: {port: 8080, upstreams: [catalog, inventory], hosts: [a], database: false}
  catalog: {replicas: 2, hosts: [a, b]}
  inventory: {grpc: true, hosts: [b]}
"""


def _on_host(tmp_path: Path, host: str):  # type: ignore[no-untyped-def]
    from souk.plan import on_host  # noqa: PLC0415

    topology = parse_topology(SEVERAL_HOSTS, "souk.yaml")
    return with_mesh(topology, on_host(build_plan(topology, tmp_path), host), tmp_path, host)


def test_on_several_hosts_the_control_plane_serves_xds_at_its_hosts_address(
    tmp_path: Path,
) -> None:
    first, second = _on_host(tmp_path, "a"), _on_host(tmp_path, "b")
    [control] = [plan for plan in first if plan.service == "mesh"]
    assert not [plan for plan in second if plan.service == "mesh"]  # on the first host only
    assert control.env["MESH_LISTEN"] == "10.0.0.11:15012"
    hosts = json.loads(control.env["MESH_SETTINGS"])["hosts"]
    # What the control plane admits from each host's credential: its address, its instances.
    assert hosts == {
        "a": {
            "address": "10.0.0.11",
            "instances": {"gateway-1": "gateway", "catalog-1": "catalog"},
        },
        "b": {
            "address": "10.0.0.12",
            "instances": {"catalog-2": "catalog", "inventory-1": "inventory"},
        },
    }


def test_on_several_hosts_sidecars_announce_their_hosts_address_and_present_its_credential(
    tmp_path: Path,
) -> None:
    sidecars = {
        plan.instance: json.loads(plan.env["MESH_SIDECAR"])
        for plan in _on_host(tmp_path, "b")
        if plan.service.endswith("-sidecar")
    }
    assert set(sidecars) == {"catalog-sidecar-2", "inventory-sidecar-1"}
    inventory = sidecars["inventory-sidecar-1"]
    assert inventory["inbound_host"] == "10.0.0.12"
    assert inventory["app"] == "10.0.0.12:20002"  # the instance's gRPC port on its host
    assert inventory["control_plane"] == "10.0.0.11:15012"
    tls = inventory["control_plane_tls"]
    assert tls["certificate"] == str(tmp_path.resolve() / "mesh/hosts/b/credential.pem")
    assert tls["key"] == str(tmp_path.resolve() / "mesh/hosts/b/credential.key")
    assert tls["trust_bundle"] == str(tmp_path.resolve() / "mesh/ca/root.pem")
    assert tls["server_id"] == "spiffe://souk.local/control-plane"
