"""The ``mesh`` section of souk.yaml as the mesh reads it: the call policy, the traffic
settings, certificate lifetimes and the trust domain (plain data: the Istio renderer reads it
without the control plane's server)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh.policy import Policy
from mesh.traffic import TrafficSettings


@dataclass(frozen=True)
class HostPlacement:
    """One host of a multi-host mesh: its address and the instances placed on it (instance
    id → service). Its credential may register these and nothing else."""

    address: str
    instances: Mapping[str, str]


@dataclass(frozen=True)
class MeshSettings:
    """The ``mesh`` section of souk.yaml, as the control plane reads it."""

    policy: Policy
    traffic: TrafficSettings
    svid_lifetime: dt.timedelta = dt.timedelta(hours=1)
    trust_domain: str = "souk.local"
    # Several hosts: xDS is served over TLS to sidecars presenting a host credential, each
    # admitted for its own host's instances only. Empty: one host, a Unix socket.
    hosts: Mapping[str, HostPlacement] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> MeshSettings:
        raw = dict(raw or {})
        lifetime = float(raw.get("svid_lifetime", 3600))
        if lifetime < 1:
            raise ValueError("mesh.svid_lifetime is in seconds and must be at least 1")
        return cls(
            # Without a policy of its own, the mesh enforces the one Souk ships.
            policy=Policy.parse(raw["policy"]) if "policy" in raw else Policy.default(),
            traffic=TrafficSettings.parse(raw.get("traffic")),
            svid_lifetime=dt.timedelta(seconds=lifetime),
            trust_domain=str(raw.get("trust_domain", "souk.local")),
            hosts={
                str(name): HostPlacement(
                    address=str(host["address"]),
                    instances={str(k): str(v) for k, v in dict(host["instances"]).items()},
                )
                for name, host in dict(raw.get("hosts") or {}).items()
            },
        )
