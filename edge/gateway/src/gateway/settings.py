"""Gateway settings: the route table and the knobs of the upstream client."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class Route(BaseModel):
    """Requests under ``prefix`` go to the instances of ``upstream``."""

    model_config = {"frozen": True, "extra": "forbid"}

    prefix: str
    upstream: str
    timeout: float = Field(default=10.0, gt=0)
    strip_prefix: bool = True
    # Replaces the prefix instead of dropping it: /api/orders/7 → /orders/7 with "/orders".
    rewrite: str | None = None

    @field_validator("prefix", "rewrite")
    @classmethod
    def _prefix_is_a_path(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith("/") or (len(value) > 1 and value.endswith("/"))
        ):
            raise ValueError("a route prefix starts with '/' and has no trailing '/'")
        return value

    def matches(self, path: str) -> bool:
        # On a segment boundary: /api/catalog matches /api/catalog/x but not /api/catalogue.
        return path == self.prefix or path.startswith(self.prefix + "/") or self.prefix == "/"

    def upstream_path(self, path: str) -> str:
        if self.rewrite is not None:
            return self.rewrite.rstrip("/") + path[len(self.prefix) :] or "/"
        if not self.strip_prefix or self.prefix == "/":
            return path
        return path[len(self.prefix) :] or "/"

    def forwarded_prefix(self) -> str | None:
        """What to put before an upstream path to get the public one (X-Forwarded-Prefix)."""
        if self.rewrite is not None:
            head = self.prefix.removesuffix(self.rewrite)
            return head if head != self.prefix and head else None
        if self.strip_prefix and self.prefix != "/":
            return self.prefix
        return None


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service: str = "gateway"
    port: int = 8080
    routes: list[Route] = Field(default_factory=list)
    connect_timeout: float = Field(default=1.0, gt=0)
    eject_seconds: float = Field(default=5.0, ge=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # Operational endpoints of the services stay on the private network.
    internal_paths: frozenset[str] = frozenset({"/healthz", "/readyz", "/metrics"})
    # ... and so does everything under these (the dead letters `souk dlq` reads and replays).
    internal_prefixes: tuple[str, ...] = ("/internal/",)

    @model_validator(mode="after")
    def _routes_name_known_upstreams(self) -> GatewaySettings:
        unknown = sorted({r.upstream for r in self.routes} - set(self.upstreams))
        if unknown:
            raise ValueError(f"routes name upstreams with no addresses: {', '.join(unknown)}")
        return self

    def route_table(self) -> list[Route]:
        """The configured routes, or ``/api/<name>`` for every upstream; longest prefix first."""
        routes = self.routes or [
            Route(prefix=f"/api/{name}", upstream=name) for name in self.upstreams
        ]
        return sorted(routes, key=lambda r: len(r.prefix), reverse=True)
