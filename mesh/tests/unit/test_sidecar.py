"""A sidecar's bootstrap: the ops listener, and with an application on a Unix socket, that
application's /metrics beside Envoy's own stats (nothing else of it)."""

from __future__ import annotations

from typing import Any

from mesh.registry import Sidecar
from mesh.sidecar import SidecarLaunch


def _launch(app_metrics: str | None) -> dict[str, Any]:
    sidecar = Sidecar(
        node_id="orders-1",
        service="orders",
        inbound_port=15001,
        app_address="unix:/data/run/orders-1/app.sock",
    )
    return SidecarLaunch(
        sidecar,
        admin_port=0,
        control_plane="unix:/data/mesh/xds.sock",
        admin_socket="/data/mesh/admin/orders-1.sock",
        ops_port=15021,
        app_metrics=app_metrics,
    ).bootstrap()


def _ops_routes(bootstrap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [ops] = bootstrap["static_resources"]["listeners"]
    manager = ops["filter_chains"][0]["filters"][0]["typed_config"]
    [host] = manager["route_config"]["virtual_hosts"]
    return {route["match"]["path"]: route["route"] for route in host["routes"]}


def test_the_ops_port_serves_the_applications_metrics_from_its_socket() -> None:
    bootstrap = _launch("unix:/data/run/orders-1/app.sock")
    routes = _ops_routes(bootstrap)
    assert routes["/metrics"] == {"cluster": "app-metrics"}
    assert routes["/stats/prometheus"]["cluster"] == "admin"
    assert set(routes) == {"/readyz", "/healthz", "/stats/prometheus", "/metrics"}
    clusters = {c["name"]: c for c in bootstrap["static_resources"]["clusters"]}
    [endpoint] = clusters["app-metrics"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"] == {"pipe": {"path": "/data/run/orders-1/app.sock"}}


def test_a_public_applications_sidecar_serves_no_metrics_of_it() -> None:
    bootstrap = _launch(None)
    assert "/metrics" not in _ops_routes(bootstrap)
    names = {c["name"] for c in bootstrap["static_resources"]["clusters"]}
    assert "app-metrics" not in names
