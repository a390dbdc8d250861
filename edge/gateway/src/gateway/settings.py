"""Gateway settings: the route table, the edge policies and the knobs of the upstream client."""

from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings

# A scope-token of RFC 6749 §3.3: printable ASCII without space, '"' or '\\'.
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
# The upstream that issues access tokens, and the path it publishes their keys under.


class Route(BaseModel):
    """Requests under ``prefix`` go to the instances of ``upstream``."""

    model_config = {"frozen": True, "extra": "forbid"}

    prefix: str
    upstream: str
    timeout: float = Field(default=10.0, gt=0)
    strip_prefix: bool = True
    # Replaces the prefix instead of dropping it: /api/orders/7 → /orders/7 with "/orders".
    rewrite: str | None = None
    # Public routes pass requests on as they are; required ones need a valid bearer token.
    auth: Literal["public", "required"] = "public"
    # Every one of these must be granted to the token (only with auth: required).
    scopes: tuple[str, ...] = ()
    # "customer": the route acts for a signed-in person; a client's own token is refused.
    subject: Literal["any", "customer"] = "any"
    # Overrides the gateway's max_body_bytes for this route.
    max_body_bytes: int | None = Field(default=None, gt=0)
    # False: the client's Authorization header stops here, for upstreams that never read it
    # (pages behind a session cookie, sign-up, signing keys): a token or a password sent
    # by mistake reaches no service that does not need it (and no log of one).
    forward_authorization: bool = True

    @field_validator("prefix", "rewrite")
    @classmethod
    def _prefix_is_a_path(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith("/") or (len(value) > 1 and value.endswith("/"))
        ):
            raise ValueError("a route prefix starts with '/' and has no trailing '/'")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes_are_scope_tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [scope for scope in value if not _SCOPE_TOKEN.match(scope)]
        if bad:
            raise ValueError(f"not OAuth 2 scope names: {bad}")
        return value

    @model_validator(mode="after")
    def _a_guarded_route_forwards_its_token(self) -> Route:
        # The service behind a guarded route checks the token again (zero trust).
        if self.auth == "required" and not self.forward_authorization:
            raise ValueError(
                f"route {self.prefix} needs a token but would not forward it: its upstream "
                "checks it too"
            )
        return self

    @model_validator(mode="after")
    def _scopes_need_a_token(self) -> Route:
        if (self.scopes or self.subject != "any") and self.auth != "required":
            raise ValueError(
                f"route {self.prefix} names scopes or a subject but is public: set auth: required"
            )
        return self

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


class TokenBucket(BaseModel):
    """``burst`` tokens, refilled at ``rate`` tokens a second; each request takes one."""

    model_config = {"frozen": True, "extra": "forbid"}

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


# The defaults (docs/security.md): on unless a topology turns them off. Per IP, a browser's
# page with its assets and a script's bursts fit; per client, each customer (or each script)
# of a client draws from its own bucket.
DEFAULT_PER_IP = TokenBucket(rate=50, burst=200)
DEFAULT_PER_CLIENT = TokenBucket(rate=20, burst=100)
# Sign-up, sign-in and the token endpoint hash a password or a secret with argon2id (64 MiB,
# a good part of a second of a core): per IP, a few a minute after a small burst.
DEFAULT_PER_IP_EXPENSIVE = TokenBucket(rate=0.2, burst=20)
DEFAULT_EXPENSIVE = ("/oauth/token", "/oauth/authorize", "/oauth/revoke", "/api/users")


class RateLimits(BaseModel):
    """One token bucket per client IP and one per OAuth client id; None means no limit.

    A POST under one of the ``expensive`` path prefixes also takes a token from the
    client IP's ``per_ip_expensive`` bucket (they cost the services far more than a read).
    """

    model_config = {"frozen": True, "extra": "forbid"}

    per_ip: TokenBucket | None = DEFAULT_PER_IP
    per_client: TokenBucket | None = DEFAULT_PER_CLIENT
    per_ip_expensive: TokenBucket | None = DEFAULT_PER_IP_EXPENSIVE
    expensive: tuple[str, ...] = DEFAULT_EXPENSIVE
    # Several gateways sharing one Redis share the buckets under these keys.
    key_prefix: str = "souk:gateway:rate:"


class Cors(BaseModel):
    """Which browser origins may call the API; no origins means no CORS answers at all."""

    model_config = {"frozen": True, "extra": "forbid"}

    allowed_origins: tuple[str, ...] = ()
    allowed_methods: tuple[str, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    allowed_headers: tuple[str, ...] = (
        "Authorization",
        "Content-Type",
        "If-Match",
        "If-None-Match",
        "Idempotency-Key",
        "X-Request-Id",
    )
    # Readable by the page's scripts: the challenge on a 401, the wait on a 429, links.
    exposed_headers: tuple[str, ...] = (
        "ETag",
        "Location",
        "Retry-After",
        "WWW-Authenticate",
        "X-Request-Id",
    )
    max_age: int = Field(default=600, ge=0)


class GatewaySettings(ServiceSettings):
    """The gateway's settings, read from ``GATEWAY_*`` variables.

    Access tokens are checked at the edge once ``auth_issuer`` (GATEWAY_AUTH_ISSUER) is set:
    tokens must carry that ``iss`` and ``auth_audience`` (GATEWAY_AUTH_AUDIENCE) in ``aud``.
    Their signing keys come from the upstream named ``identity``, at
    ``<its first URL>/.well-known/jwks.json``, so the topology names identity's address once.
    """

    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    service: str = "gateway"
    port: int = 8080
    routes: list[Route] = Field(default_factory=list)
    connect_timeout: float = Field(default=1.0, gt=0)
    eject_seconds: float = Field(default=5.0, ge=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # Operational endpoints and the own API documents of the services stay on the private
    # network: the public reads the gateway's one merged document at its /openapi.json.
    internal_paths: frozenset[str] = frozenset(
        {
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/docs/oauth2-redirect",
            "/redoc",
        }
    )
    # ... and so does everything under these (the dead letters `souk dlq` reads and replays).
    internal_prefixes: tuple[str, ...] = ("/internal/",)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    # The edge: a client's own X-Forwarded-For would buy it a fresh per-IP bucket. Name the
    # load balancer in front of the gateway here (JSON list), if there is one.
    forwarded_allow_ips: list[str] = Field(default_factory=list)
    # The gateway's own /healthz, /readyz and /metrics answer only clients from these
    # networks (the supervisor, the console, Prometheus on the same host by default); to
    # anyone else they do not exist (404). A proxy in front must be named in
    # forwarded_allow_ips, or every client would look like it.
    ops_networks: tuple[IPvAnyNetwork, ...] = (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
    )
    # With a Redis URL the rate limits hold across every gateway replica using it.
    redis_url: str | None = None
    cors: Cors = Field(default_factory=Cors)
    # Sent only on answers served over TLS (a browser ignores it over plain HTTP anyway).
    hsts_max_age: int = Field(default=31_536_000, ge=0)

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
