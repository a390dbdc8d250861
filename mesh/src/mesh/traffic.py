"""How a sidecar treats the traffic to one upstream: balancing, health, ejection, breakers,
retries and timeouts, with defaults that suit Souk on one machine (souk.yaml overrides them
per upstream under ``mesh.traffic``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

LbPolicy = Literal["round_robin", "least_request", "ring_hash"]

# What a caller's sidecar retries (Envoy's retry conditions): any request on errors that
# happen before the callee saw it...
SAFE_RETRIES = "connect-failure,refused-stream,reset-before-request"
# ...and GET and HEAD, which change nothing, on a 5xx or a reset too, on another instance.
IDEMPOTENT_RETRIES = "5xx,reset,connect-failure,refused-stream"


@dataclass(frozen=True)
class Traffic:
    lb_policy: LbPolicy = "least_request"
    connect_timeout: float = 1.0
    # Per route: the whole request, retries included. gRPC calls keep their own deadline
    # (grpc-timeout), which the sidecar honours instead.
    timeout: float = 30.0
    # 0: each try may take the whole timeout (a slow answer is not a failure to retry).
    per_try_timeout: float = 0.0
    health_check_interval: float = 2.0
    # Lenient: a busy instance (argon2 on a shared core) must not drop out of the mesh for
    # answering one probe slowly; three failed probes in a row take it out.
    health_check_timeout: float = 3.0
    health_check_path: str = "/readyz"
    unhealthy_threshold: int = 3
    healthy_threshold: int = 1
    consecutive_5xx: int = 3
    consecutive_gateway_failure: int = 3
    outlier_interval: float = 1.0
    base_ejection_time: float = 5.0
    # An upstream whose every instance fails is ejected whole: callers get a 503 at once
    # instead of adding load to it (healthy panic is off).
    max_ejection_percent: int = 100
    max_connections: int = 1024
    max_pending_requests: int = 256
    max_requests: int = 1024
    max_retries: int = 16
    num_retries: int = 2
    # Retries may add at most this share of the requests in flight (Envoy's retry budget).
    retry_budget_percent: float = 20.0
    min_retry_concurrency: int = 1

    def merged(self, raw: Mapping[str, Any] | None) -> Traffic:
        if not raw:
            return self
        known = {f.name: f.type for f in fields(self)}
        unknown = set(raw) - set(known)
        if unknown:
            raise ValueError(f"unknown traffic settings {sorted(unknown)}")
        if "lb_policy" in raw and raw["lb_policy"] not in (
            "round_robin",
            "least_request",
            "ring_hash",
        ):
            raise ValueError(
                f"lb_policy {raw['lb_policy']!r} is not round_robin, least_request or ring_hash"
            )
        return replace(self, **dict(raw))


@dataclass(frozen=True)
class TrafficSettings:
    """The defaults and the per-upstream overrides of ``mesh.traffic`` in souk.yaml."""

    default: Traffic = Traffic()
    upstreams: Mapping[str, Traffic] | None = None

    def for_upstream(self, service: str) -> Traffic:
        return (self.upstreams or {}).get(service, self.default)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> TrafficSettings:
        raw = dict(raw or {})
        default = Traffic().merged(raw.pop("default", None))
        return cls(default, {name: default.merged(over) for name, over in raw.items()})
