"""The ``mesh`` section of the topology file: off (the default) or on, with its settings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MeshSpec(BaseModel):
    """``mesh: on`` runs an Envoy sidecar beside every instance, driven by Souk's control plane
    (mTLS with SPIFFE identities, the call policy, balancing, ejection, retries, breakers).

    ``policy`` replaces the shipped policy (mesh/src/mesh/default_policy.yaml); ``traffic``
    overrides the traffic defaults, under ``default`` or per upstream service.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # Seconds an X.509-SVID is valid; rotated at half its life.
    svid_lifetime: float = Field(3600.0, ge=1.0)
    policy: dict[str, Any] | None = None
    traffic: dict[str, Any] | None = None
    # The sidecars' own log level (Envoy's: trace, debug, info, warning, error, critical, off).
    log_level: str = "warning"
    # Several hosts: the host the control plane runs on (default: the first in `hosts:`) and
    # the port it serves xDS on at that host's address, over mutual TLS (Istio's is 15012).
    control_plane: str | None = None
    xds_port: int = Field(15012, ge=1, le=65535)

    @model_validator(mode="before")
    @classmethod
    def _on_or_off(cls, data: Any) -> Any:
        # `mesh: on` / `mesh: off` (YAML reads them as booleans), or a mapping.
        if isinstance(data, bool):
            return {"enabled": data}
        if isinstance(data, dict) and "enabled" not in data:
            return {**data, "enabled": True}
        return data

    def control_plane_settings(self) -> dict[str, Any]:
        """What the control plane reads (MESH_SETTINGS)."""
        settings: dict[str, Any] = {"svid_lifetime": self.svid_lifetime}
        if self.policy is not None:
            settings["policy"] = self.policy
        if self.traffic is not None:
            settings["traffic"] = self.traffic
        return settings
