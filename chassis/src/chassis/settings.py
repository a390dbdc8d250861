"""Typed settings every Souk process starts from; each service subclasses with its own prefix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chassis.resilience.policy import DependencyPolicy

IDENTITY_UPSTREAM = "identity"
JWKS_PATH = "/.well-known/jwks.json"
REVOCATIONS_PATH = "/internal/revocations"


# The broker: its kinds and their URL schemes, the defaults, and where the embedded broker
# lives in a data directory, written once; ``chassis.messaging.connect`` takes a BrokerSettings.
BrokerKind = Literal["embedded", "rabbitmq", "nats", "kafka"]
SCHEMES: Final[Mapping[BrokerKind, tuple[str, ...]]] = {
    "embedded": ("embedded",),
    "rabbitmq": ("amqp", "amqps"),
    "nats": ("nats",),
    "kafka": ("kafka",),
}
"""The URL schemes of each broker kind."""
DEFAULT_PARTITIONS: Final = 8
"""Partitions per topic unless the topology says otherwise."""
DEFAULT_NAMESPACE: Final = "souk"
"""What every broker-side name starts with unless the topology says otherwise."""
EMBEDDED_DIRECTORY: Final = "broker"
"""The embedded broker's directory inside a data directory."""
DEFAULT_URLS: Final[Mapping[BrokerKind, str]] = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "nats": "nats://127.0.0.1:4222",
    "kafka": "kafka://127.0.0.1:9092",
}
"""Each networked broker on its usual local port (the embedded one lives in a data dir)."""
DEFAULT_PORTS: Final[Mapping[str, int]] = {"amqp": 5672, "amqps": 5671, "nats": 4222, "kafka": 9092}
"""The port a networked broker's URL means when it names none, by scheme."""
URL_OPTIONS: Final = ("partitions", "namespace")
"""What a URL's query may still say (the older way); the settings' own fields say it now."""


def kind_of(url: str) -> BrokerKind:
    """The broker kind ``url``'s scheme names; ValueError if none."""
    scheme = urlsplit(url).scheme
    for kind, schemes in SCHEMES.items():
        if scheme in schemes:
            return kind
    known = ", ".join(s for schemes in SCHEMES.values() for s in schemes)
    raise ValueError(f"broker URL {url!r}: scheme must be one of {known}")


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Which broker, and how a service's topics are laid out on it."""

    url: str
    """The broker's own URL: ``embedded:///abs/dir``, ``amqp://``, ``nats://``, ``kafka://``."""
    partitions: int = DEFAULT_PARTITIONS
    namespace: str = DEFAULT_NAMESPACE
    kind: BrokerKind = field(init=False)

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise ValueError("a topic has at least one partition")
        object.__setattr__(self, "kind", kind_of(self.url))

    @classmethod
    def embedded(cls, data_dir: Path) -> BrokerSettings:
        """The embedded broker in ``data_dir`` (shared by every process `souk up` starts)."""
        return cls(f"embedded://{(data_dir / EMBEDDED_DIRECTORY).resolve()}")

    @classmethod
    def local(
        cls,
        kind: BrokerKind,
        data_dir: Path,
        *,
        partitions: int = DEFAULT_PARTITIONS,
        namespace: str = DEFAULT_NAMESPACE,
    ) -> BrokerSettings:
        """A broker of ``kind`` where it usually is: the embedded one in ``data_dir``, a
        networked one on its usual local port."""
        url = cls.embedded(data_dir).url if kind == "embedded" else DEFAULT_URLS[kind]
        return cls(url, partitions=partitions, namespace=namespace)

    def server(self) -> tuple[str, int] | None:
        """The host and port of a networked broker; None for the embedded one.

        ValueError if the URL names no host or an invalid port.
        """
        if self.kind == "embedded":
            return None
        parts = urlsplit(self.url)
        if not parts.hostname:
            raise ValueError("names no host")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        return parts.hostname, port or DEFAULT_PORTS[parts.scheme]

    def env(self, prefix: str) -> dict[str, str]:
        """These settings as the environment variables a :class:`ServiceSettings` with
        ``env_prefix=prefix`` reads back (``<prefix>BROKER_URL`` and the rest)."""
        return {
            f"{prefix}BROKER_URL": self.url,
            f"{prefix}BROKER_PARTITIONS": str(self.partitions),
            f"{prefix}BROKER_NAMESPACE": self.namespace,
        }

    @classmethod
    def parse(
        cls, url: str, *, partitions: int | None = None, namespace: str | None = None
    ) -> BrokerSettings:
        """Settings for ``url``; ``?partitions=N&namespace=X`` in it (the older way of giving
        them) count unless given here, and are taken out of the URL."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = {name: value for name, value in query if name in URL_OPTIONS}
        rest = urlencode([(name, value) for name, value in query if name not in URL_OPTIONS])
        # Joined by hand: urlunsplit would turn embedded:///dir into embedded:/dir.
        base = url.partition("?")[0] if parts.query else url
        if rest:
            base = f"{base}?{rest}" if parts.scheme == "embedded" else _with_query(url, rest)
        return cls(
            base,
            partitions=partitions or int(options.get("partitions", DEFAULT_PARTITIONS)),
            namespace=namespace or options.get("namespace", DEFAULT_NAMESPACE),
        )


def _with_query(url: str, query: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


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
    # When the schema is migrated: at start-up (under a lock, `souk up`), or by a run of its
    # own that migrates and exits (`only`: a Kubernetes Job) while the replicas `skip` it and
    # stay unready until the schema is at the newest revision.
    migrate: Literal["at-start", "only", "skip"] = "at-start"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    upstreams: dict[str, list[str]] = Field(default_factory=dict)
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    # With the mesh on, the application opens no TCP port: it listens on these Unix sockets
    # (mode 0600, in a 0700 directory) and only its own sidecar, the supervisor and the
    # operator's tools (the same OS user) connect. ``uds`` replaces host:port for HTTP,
    # ``grpc_uds`` replaces host:grpc_port for gRPC.
    uds: Path | None = None
    grpc_uds: Path | None = None
    shutdown_timeout: float = Field(default=10.0, gt=0)
    # Slow or idle clients cannot hold a connection: the headers of each request must be in
    # within header_timeout seconds of its first byte (of the connection, for the first), an
    # idle keep-alive connection is closed after keep_alive_timeout.
    header_timeout: float = Field(default=5.0, gt=0)
    keep_alive_timeout: float = Field(default=5.0, gt=0)
    # Whose X-Forwarded-For / -Proto to believe: behind the gateway, the local gateway's.
    # An edge process (the gateway) believes nobody unless a load balancer is named here.
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # OTLP/HTTP base URL spans are exported to (`souk up`: the console); None: not exported.
    otlp_endpoint: str | None = None
    # Share of the traces started here that record spans (a caller's sampled flag wins):
    # 0 turns tracing off while trace context still travels.
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)
    # The broker's own URL (None: the embedded broker in the data directory), and how the
    # topics are laid out on it (None: the URL's ?partitions=/&namespace=, else the defaults).
    broker_url: str | None = None
    broker_partitions: int | None = Field(default=None, ge=1)
    broker_namespace: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{0,30}$")
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
    # gRPC calls worked on at once (health and reflection not counted); over it a call is
    # answered RESOURCE_EXHAUSTED at once instead of queueing.
    max_concurrent_grpc: int = Field(default=64, ge=1)

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

    def broker(self) -> BrokerSettings:
        """The broker to connect to: the configured one, else the embedded broker in the data
        directory (every process `souk up` starts shares one, hence one embedded broker)."""
        url = self.broker_url or BrokerSettings.embedded(self.data_dir).url
        return BrokerSettings.parse(
            url, partitions=self.broker_partitions, namespace=self.broker_namespace
        )

    def broker_url_or_default(self) -> str:
        """The configured broker URL as given, else the embedded broker's (see :meth:`broker`)."""
        return self.broker_url or self.broker().url

    def database_url_or_default(self) -> str:
        """The configured database URL, else a SQLite file of this service's own."""
        if self.database_url:
            return self.database_url
        path = (self.data_dir / f"{self.service}.db").resolve()
        return f"sqlite+aiosqlite:///{path}"
