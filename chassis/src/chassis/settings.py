"""Typed settings every Souk process starts from; each service subclasses with its own prefix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chassis.resilience.policy import DependencyPolicy

IDENTITY_UPSTREAM = "identity"
JWKS_PATH = "/.well-known/jwks.json"
REVOCATIONS_PATH = "/internal/revocations"


class ServiceSettings(BaseSettings):
    """What the chassis needs to run a process.

    A service subclasses this with ``env_prefix="<SERVICE>_"``; `souk up` sets
    ``<SERVICE>_INSTANCE``, ``_PORT``, ``_DATA_DIR`` and ``_UPSTREAMS`` for each instance.
    """

    model_config = SettingsConfigDict(env_prefix="SOUK_", extra="ignore", frozen=True)

    service: str = "service"
    instance: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path(".souk")
    database_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    upstreams: dict[str, list[str]] = Field(default_factory=dict)
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    shutdown_timeout: float = Field(default=10.0, gt=0)
    # Whose X-Forwarded-For / -Proto to believe: behind the gateway, the local gateway's.
    # An edge process (the gateway) believes nobody unless a load balancer is named here.
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    otlp_endpoint: str | None = None
    broker_url: str | None = None
    # The issuer's public URL as written in its tokens; None: this process checks no tokens.
    # The signing keys come from the upstream named ``identity`` (see ``jwks_url``).
    auth_issuer: str | None = None
    auth_audience: str = "souk"
    # Absorbs clock skew between identity and this process on exp, nbf and iat.
    auth_leeway_seconds: int = Field(default=30, ge=0, le=300)
    # How stale the copy of identity's revoked grants may be: a token of a revoked refresh
    # family is refused at most this long after the revocation.
    auth_revocations_max_age_seconds: float = Field(default=5.0, gt=0, le=300)

    # Resilience (ADR 0017): how calls to each dependency are bounded, by its name (an
    # upstream, a payment provider), JSON in the environment; fields left out keep the
    # caller's defaults. And how many requests the process works on at once per lane.
    resilience: dict[str, DependencyPolicy] = Field(default_factory=dict)
    max_concurrent_reads: int = Field(default=256, ge=1)
    max_concurrent_writes: int = Field(default=64, ge=1)

    @classmethod
    def for_service(cls, service: str) -> Self:
        """Settings of ``cls`` read under the prefix of ``service``.

        One module can run as several services (a primary and a backup payment provider):
        `souk up` names the service in ``SOUK_SERVICE`` and its variables carry that prefix.
        """
        prefix = service.upper().replace("-", "_") + "_"
        named = type(cls.__name__, (cls,), {"model_config": SettingsConfigDict(env_prefix=prefix)})
        return named(service=service)  # type: ignore[no-any-return]

    @field_validator("upstreams")
    @classmethod
    def _upstreams_are_urls(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, urls in value.items():
            for url in urls:
                if not url.startswith(("http://", "https://", "grpc://")):
                    raise ValueError(f"upstream {name!r}: {url!r} is not an http(s) or grpc URL")
        return value

    def upstream(self, name: str) -> list[str]:
        """The addresses of upstream ``name``; a clear error if the topology gave none."""
        urls = self.upstreams.get(name)
        if not urls:
            raise LookupError(
                f"{self.service} has no address for upstream {name!r}: "
                f"list it under `upstreams` of {self.service} in the topology"
            )
        return urls

    @model_validator(mode="after")
    def _an_issuer_needs_identity(self) -> Self:
        if self.auth_issuer is not None and not self.upstreams.get(IDENTITY_UPSTREAM):
            raise ValueError(
                "auth_issuer is set but there is no 'identity' upstream to fetch its JWKS from"
            )
        return self

    def jwks_url(self) -> str:
        """Where the issuer publishes its signing keys: under the first identity instance."""
        return self.upstream(IDENTITY_UPSTREAM)[0].rstrip("/") + JWKS_PATH

    def revocations_url(self) -> str:
        """Where the issuer lists the grants it revoked lately: an internal route of identity."""
        return self.upstream(IDENTITY_UPSTREAM)[0].rstrip("/") + REVOCATIONS_PATH

    @property
    def instance_id(self) -> str:
        """The instance name given by the orchestrator, or one made from the pid."""
        return self.instance or f"{self.service}-{os.getpid()}"

    def broker_url_or_default(self) -> str:
        """The configured broker URL, else the embedded broker in the data directory.

        Every process `souk up` starts shares one data directory, hence one embedded broker.
        """
        if self.broker_url:
            return self.broker_url
        return f"embedded://{(self.data_dir / 'broker').resolve()}"

    def database_url_or_default(self) -> str:
        """The configured database URL, else a SQLite file of this service's own."""
        if self.database_url:
            return self.database_url
        path = (self.data_dir / f"{self.service}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"
