"""`souk mesh status`: what the control plane issued and what each sidecar sees.

The control plane's status file gives every instance's identity, certificate expiry and the
policy; each sidecar's admin API (on its private Unix socket) gives the endpoints of every
upstream with their health and ejections, and the breakers that overflowed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from souk.meshing import admin_socket, mesh_dir

OVERFLOWS = ("upstream_cx_overflow", "upstream_rq_pending_overflow", "upstream_rq_retry_overflow")
_ADMIN_TIMEOUT = 2.0


class MeshNotRunningError(Exception):
    """The data dir holds no running mesh (mesh: off, or souk is not running)."""


def _admin(instance: str, data_dir: Path, path: str) -> str:
    transport = httpx.HTTPTransport(uds=str(admin_socket(data_dir, instance)))
    with httpx.Client(transport=transport, timeout=_ADMIN_TIMEOUT) as client:
        answer = client.get(f"http://sidecar{path}")
        answer.raise_for_status()
        return answer.text


def _address(address: dict[str, Any]) -> str:
    if "pipe" in address:
        return f"unix:{address['pipe']['path']}"
    socket = address["socket_address"]
    return f"{socket['address']}:{socket['port_value']}"


def _upstreams(instance: str, data_dir: Path) -> list[dict[str, Any]]:
    """Each upstream cluster of a sidecar: endpoints with health and ejection, overflows."""
    clusters = json.loads(_admin(instance, data_dir, "/clusters?format=json"))
    counters: dict[str, int] = {}
    for line in _admin(instance, data_dir, "/stats?filter=overflow").splitlines():
        name, _, value = line.partition(": ")
        if value.isdigit():
            counters[name] = int(value)
    upstreams = []
    for cluster in clusters.get("cluster_statuses", []):
        name = cluster["name"]
        if name in {"local-app", "souk-control-plane", "admin", "app-metrics"}:
            continue
        endpoints = []
        for host in cluster.get("host_statuses", []):
            health = host.get("health_status", {})
            endpoints.append(
                {
                    "address": _address(host["address"]),
                    "instance": host.get("hostname", ""),
                    "healthy": not any(
                        health.get(flag)
                        for flag in ("failed_active_health_check", "pending_active_hc")
                    ),
                    "ejected": bool(health.get("failed_outlier_check")),
                }
            )
        upstreams.append(
            {
                "cluster": name,
                "endpoints": endpoints,
                "overflows": {
                    kind: counters.get(f"cluster.{name}.{kind}", 0) for kind in OVERFLOWS
                },
            }
        )
    return upstreams


def gather(data_dir: Path) -> dict[str, Any]:
    """The whole mesh as `souk mesh status --json` prints it."""
    status_file = mesh_dir(data_dir) / "status.json"
    if not status_file.is_file():
        raise MeshNotRunningError(
            f"no mesh in {data_dir} (is souk running, with `mesh: on` in its topology?)"
        )
    status: dict[str, Any] = json.loads(status_file.read_text())
    for instance in status.get("instances", []):
        try:
            instance["upstreams"] = _upstreams(instance["instance"], data_dir)
            instance["sidecar"] = "up"
        except (httpx.HTTPError, OSError, ValueError):
            instance["upstreams"] = []
            instance["sidecar"] = "unreachable"
    return status


def render(status: dict[str, Any], console: Console) -> None:
    identities = Table(title="identities")
    for column in ("instance", "SPIFFE ID", "certificate valid until", "inbound", "sidecar"):
        identities.add_column(column)
    for instance in status.get("instances", []):
        identities.add_row(
            instance["instance"],
            instance.get("spiffe_id") or "-",
            instance.get("not_after") or "-",
            instance.get("inbound", "-"),
            instance.get("sidecar", "-"),
        )
    console.print(identities)

    endpoints = Table(title="upstreams, as each sidecar sees them")
    for column in ("sidecar of", "upstream", "endpoint", "healthy", "ejected", "overflows"):
        endpoints.add_column(column)
    for instance in status.get("instances", []):
        for upstream in instance.get("upstreams", []):
            overflowed = ", ".join(f"{k}={v}" for k, v in upstream["overflows"].items() if v)
            for endpoint in upstream["endpoints"] or [{}]:
                endpoints.add_row(
                    instance["instance"],
                    upstream["cluster"],
                    f"{endpoint.get('instance', '')} {endpoint.get('address', '-')}".strip(),
                    "yes" if endpoint.get("healthy") else "no",
                    "yes" if endpoint.get("ejected") else "no",
                    overflowed or "-",
                )
    console.print(endpoints)

    policy = Table(title="policy (anything not allowed is refused)")
    for column in ("callee", "callers", "routes", "closed to the others"):
        policy.add_column(column)
    for callee, rules in sorted(status.get("policy", {}).items()):
        closed = ", ".join(rules.get("closed", [])) or "-"
        for rule in rules.get("allow", []) or [{"from": [], "routes": []}]:
            policy.add_row(
                callee,
                ", ".join(rule["from"]) or "(nobody)",
                ", ".join(rule["routes"]) or "-",
                closed,
            )
    console.print(policy)
    console.print(
        f"certificates live {status.get('svid_lifetime_seconds', 0):g}s, rotated at half-life; "
        f"status of {status.get('updated', '?')}",
        markup=False,
    )
