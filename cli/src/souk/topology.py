"""The topology file: pydantic models, and a loader that reports errors with their line."""

from __future__ import annotations

import ipaddress
import json
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from chassis.settings import (
    DEFAULT_NAMESPACE,
    DEFAULT_PARTITIONS,
    DEFAULT_URLS,
    SCHEMES,
    URL_OPTIONS,
    BrokerKind,
    BrokerSettings,
)
from souk.mesh_settings import MeshSpec

DEFAULT_TOPOLOGY_NAME = "souk.yaml"
DEFAULT_DATA_DIR = ".souk"

_SERVICE_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# Database roles are named <prefix>_<service>; PostgreSQL cuts names at 63 bytes.
_MAX_SERVICE_NAME = 30
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Port = Annotated[int, Field(ge=1, le=65535)]

# The broker's kinds, URL schemes, defaults and embedded directory are the chassis's
# (``chassis.settings``): the topology names them, and hands services a BrokerSettings.
_BROKER_KINDS = ", ".join(SCHEMES)


class TopologyError(Exception):
    """The topology file is unreadable or invalid; each problem reads `file:line: key: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _error(loc: tuple[str | int, ...], kind: str, message: str, value: object) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def _raise_if_any(title: str, errors: list[InitErrorDetails]) -> None:
    # A ValidationError raised inside a validator keeps each error's own `loc`, so cross-field
    # problems point at the exact key (and line) instead of at the enclosing mapping.
    if errors:
        raise ValidationError.from_exception_data(title, errors)


class ServiceSpec(BaseModel):
    """One service of the topology."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    module: str | None = None
    replicas: int = Field(1, ge=1)
    port: Port | None = None
    ports: list[Port] | None = None
    upstreams: list[str] = Field(default_factory=list)
    env: dict[str, Any] = Field(default_factory=dict)
    # A gRPC service gets a second (free) port; its callers are given grpc:// targets.
    grpc: bool = False
    # Whether the service keeps state: only those get a database on a shared server.
    database: bool = True
    # Multi-host topologies: the host (a name under `hosts:`) of every replica, or one host
    # for all of them.
    hosts: list[str] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _check_consistency(self) -> ServiceSpec:
        errors: list[InitErrorDetails] = []
        if self.module is not None and not _MODULE_NAME.fullmatch(self.module):
            errors.append(
                _error(("module",), "module_name", "not a Python module name", self.module)
            )
        if self.port is not None and self.ports is not None:
            errors.append(
                _error(("ports",), "port_conflict", "give either port or ports, not both", None)
            )
        if self.port is not None and self.replicas != 1:
            errors.append(
                _error(
                    ("port",),
                    "port_with_replicas",
                    f"port is only valid with replicas: 1 (this service has {self.replicas}); "
                    "use ports: [...] with one port per replica",
                    self.port,
                )
            )
        if self.ports is not None:
            if len(self.ports) != self.replicas:
                errors.append(
                    _error(
                        ("ports",),
                        "ports_count",
                        f"ports lists {len(self.ports)} port(s) but replicas is {self.replicas}",
                        self.ports,
                    )
                )
            seen: set[int] = set()
            for index, port in enumerate(self.ports):
                if port in seen:
                    errors.append(
                        _error(
                            ("ports", index), "duplicate_port", f"port {port} is listed twice", port
                        )
                    )
                seen.add(port)
        for index, name in enumerate(self.upstreams):
            if name in self.upstreams[:index]:
                errors.append(
                    _error(
                        ("upstreams", index),
                        "duplicate_upstream",
                        f"{name!r} is listed twice",
                        name,
                    )
                )
        errors.extend(
            _error(("env", key), "env_name", "not a valid environment variable name", key)
            for key in self.env
            if not _ENV_NAME.fullmatch(key)
        )
        if self.hosts is not None and len(self.hosts) not in (1, self.replicas):
            errors.append(
                _error(
                    ("hosts",),
                    "hosts_count",
                    f"hosts lists {len(self.hosts)} hosts but replicas is {self.replicas}: "
                    "give one host for all replicas or one per replica",
                    self.hosts,
                )
            )
        _raise_if_any("ServiceSpec", errors)
        return self

    def fixed_ports(self) -> list[int] | None:
        """The ports fixed by the file, one per replica, or None when they are chosen freely."""
        if self.port is not None:
            return [self.port]
        return list(self.ports) if self.ports is not None else None


class HostSpec(BaseModel):
    """One machine of a multi-host topology: where its instances listen and are reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The address its instances bind and the other hosts call them on (no name lookup).
    address: str
    # Instances without a fixed port get the next free one from here, in topology order, so
    # every host computes the same ports for every other host without asking it.
    ports_from: Port = 20000

    @field_validator("address")
    @classmethod
    def _an_ip_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise PydanticCustomError(
                "host_address", "{value} is not an IP address", {"value": repr(value)}
            ) from None
        return value


class DatabaseSpec(BaseModel):
    """Where services keep their data: a SQLite file each, or a PostgreSQL server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["sqlite", "postgres"] = "sqlite"
    # An administrator's connection: it creates the databases, schemas and roles.
    url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # per-service: a database each. shared: one database, a private schema and role each.
    mode: Literal["per-service", "shared"] = "per-service"
    # Names of what is created start with it, so several systems can share one server.
    prefix: str = Field("souk", pattern=r"^[a-z][a-z0-9_]{0,30}$")


class BrokerSpec(BaseModel):
    """The message broker every service publishes to and consumes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BrokerKind = "embedded"
    # None: the kind's local default (embedded: a directory in the data dir).
    url: str | None = None
    partitions: int = Field(DEFAULT_PARTITIONS, ge=1)
    # Every broker-side name starts with it, so several systems can share one broker.
    namespace: str = Field(DEFAULT_NAMESPACE, pattern=r"^[a-z][a-z0-9_-]{0,30}$")

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        # `broker: rabbitmq` or `broker: nats://host:4222`; a mapping with a url and no kind
        # takes the kind its scheme names.
        if isinstance(data, str):
            data = {"url": data} if "://" in data else {"kind": data}
        elif not isinstance(data, dict):
            raise PydanticCustomError(
                "broker",
                "give a broker kind ({kinds}), a url, or a mapping with kind and url",
                {"kinds": _BROKER_KINDS},
            )
        if "kind" not in data and isinstance(data.get("url"), str):
            scheme = urlsplit(data["url"]).scheme
            kind = next((k for k, schemes in SCHEMES.items() if scheme in schemes), None)
            if kind is not None:
                data = {**data, "kind": kind}
        return data

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        if value not in SCHEMES:
            raise PydanticCustomError(
                "broker_kind",
                "unknown broker kind {kind} (one of {kinds})",
                {"kind": repr(value), "kinds": _BROKER_KINDS},
            )
        return value

    @model_validator(mode="after")
    def _check_url(self) -> BrokerSpec:
        if self.url is not None:
            problem = _broker_url_problem(self.kind, self.url)
            if problem is not None:
                _raise_if_any("BrokerSpec", [_error(("url",), "broker_url", problem, self.url)])
        return self

    def settings(self, data_dir: Path) -> BrokerSettings:
        """What every service is handed: the broker's URL (embedded: in ``data_dir``) and how
        its topics are laid out."""
        if self.url is None:
            return BrokerSettings.local(
                self.kind, data_dir, partitions=self.partitions, namespace=self.namespace
            )
        return BrokerSettings(self.url, partitions=self.partitions, namespace=self.namespace)

    def server(self) -> tuple[str, int] | None:
        """The host and port of a networked broker; None for the embedded one."""
        if self.kind == "embedded":
            return None
        return BrokerSettings(self.url or DEFAULT_URLS[self.kind]).server()


def _broker_url_problem(kind: BrokerKind, url: str) -> str | None:
    parts = urlsplit(url)
    expected = SCHEMES[kind]
    shown = " or ".join(f"{scheme}://" for scheme in expected)
    if parts.scheme not in expected:
        given = f"{parts.scheme}://" if "://" in url else repr(url)
        return f"a {kind} broker's url starts with {shown}, not {given}"
    clashing = [option for option in URL_OPTIONS if option in parse_qs(parts.query)]
    if clashing:
        return f"give {' and '.join(clashing)} under broker, not in the url"
    if kind == "embedded":
        if parts.netloc or not parts.path.startswith("/"):
            return "an embedded broker's url is embedded:///absolute/directory"
        return None
    try:
        BrokerSettings(url).server()
    except ValueError as exc:
        return f"{url!r} {exc} (expected {shown}host:port)"
    return None


class TelemetrySpec(BaseModel):
    """Where the processes' telemetry goes, and whether `souk up` runs Prometheus too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Spans go over OTLP/HTTP to this base URL (a collector, Jaeger, Tempo); by default to
    # the topology's `console` service, if it has one.
    otlp_endpoint: str | None = Field(None, pattern=r"^https?://")
    # false: no process exports spans (they still carry trace context to each other).
    export_spans: bool = True
    # Start `prometheus` (when the binary is on PATH) scraping every instance, with Souk's
    # recording and alerting rules, on this port.
    prometheus: bool = False
    prometheus_port: Port = 9090


class Topology(BaseModel):
    """The whole topology file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: str | None = None
    database: DatabaseSpec = Field(default_factory=DatabaseSpec)
    broker: BrokerSpec = Field(default_factory=BrokerSpec)
    mesh: MeshSpec = Field(default_factory=lambda: MeshSpec(enabled=False))
    # Multi-host: the machines (name → address) the services' `hosts` place instances on;
    # `souk up --host NAME` runs one machine's share. None: everything on 127.0.0.1.
    hosts: dict[str, HostSpec] | None = Field(None, min_length=1)
    services: dict[str, ServiceSpec] = Field(min_length=1)
    telemetry: TelemetrySpec = Field(default_factory=TelemetrySpec)
    # `file:line` of the broker's settings, for messages about the server they name.
    _broker_origin: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_services(self) -> Topology:
        errors: list[InitErrorDetails] = []
        owners: dict[int, str] = {}
        for name, spec in self.services.items():
            if not _SERVICE_NAME.fullmatch(name) or len(name) > _MAX_SERVICE_NAME:
                errors.append(
                    _error(
                        ("services", name),
                        "service_name",
                        "service names are lowercase words joined by '-', e.g. 'order-history', "
                        f"at most {_MAX_SERVICE_NAME} characters",
                        name,
                    )
                )
            for index, upstream in enumerate(spec.upstreams):
                if upstream not in self.services:
                    known = ", ".join(sorted(self.services))
                    errors.append(
                        _error(
                            ("services", name, "upstreams", index),
                            "unknown_upstream",
                            f"unknown service {upstream!r} (services in this file: {known})",
                            upstream,
                        )
                    )
            errors.extend(self._placement_errors(name, spec))
            fixed = spec.fixed_ports() or []
            for index, port in enumerate(fixed):
                loc: tuple[str | int, ...] = (
                    ("services", name, "port")
                    if spec.port is not None
                    else ("services", name, "ports", index)
                )
                if self.hosts is None and port in owners and owners[port] != name:
                    errors.append(
                        _error(
                            loc,
                            "duplicate_port",
                            f"port {port} is also used by {owners[port]}",
                            port,
                        )
                    )
                owners.setdefault(port, name)
        errors.extend(self._multi_host_errors())
        _raise_if_any("Topology", errors)
        return self

    def _placement_errors(self, name: str, spec: ServiceSpec) -> list[InitErrorDetails]:
        if self.hosts is None:
            if spec.hosts is None:
                return []
            return [
                _error(
                    ("services", name, "hosts"),
                    "no_hosts",
                    "the topology names no hosts: add a `hosts:` mapping (name: {address})",
                    spec.hosts,
                )
            ]
        if spec.hosts is None:
            return [
                _error(
                    ("services", name),
                    "no_placement",
                    f"the topology runs on several hosts: say which in hosts: [...] "
                    f"(one of {', '.join(self.hosts)})",
                    name,
                )
            ]
        return [
            _error(
                ("services", name, "hosts", index),
                "unknown_host",
                f"unknown host {host!r} (hosts in this file: {', '.join(self.hosts)})",
                host,
            )
            for index, host in enumerate(spec.hosts)
            if host not in self.hosts
        ]

    def _multi_host_errors(self) -> list[InitErrorDetails]:
        if self.hosts is None:
            return []
        errors: list[InitErrorDetails] = []
        if self.database.backend == "sqlite":
            errors.append(
                _error(
                    ("database",),
                    "multi_host_sqlite",
                    "a topology on several hosts keeps its data on a server: "
                    "database: {backend: postgres, url: ...}",
                    None,
                )
            )
        if self.broker.kind == "embedded":
            errors.append(
                _error(
                    ("broker",),
                    "multi_host_embedded",
                    "a topology on several hosts needs a broker server (rabbitmq, nats or "
                    "kafka with its url), not the embedded one",
                    None,
                )
            )
        if self.mesh.control_plane is not None and self.mesh.control_plane not in self.hosts:
            errors.append(
                _error(
                    ("mesh", "control_plane"),
                    "unknown_host",
                    f"unknown host {self.mesh.control_plane!r} "
                    f"(hosts in this file: {', '.join(self.hosts)})",
                    self.mesh.control_plane,
                )
            )
        # A fixed port is taken on its own host only.
        owners: dict[tuple[str, int], str] = {}
        for name, spec in self.services.items():
            for index, port in enumerate(spec.fixed_ports() or []):
                host = self.host_of(name, index + 1)
                if owners.setdefault((host, port), name) != name:
                    errors.append(
                        _error(
                            ("services", name),
                            "duplicate_port",
                            f"port {port} on host {host} is also used by {owners[(host, port)]}",
                            port,
                        )
                    )
        return errors

    def mesh_control_plane_host(self) -> str:
        """Several hosts with the mesh: the host its control plane runs on ("" on one host)."""
        if self.hosts is None:
            return ""
        return self.mesh.control_plane or next(iter(self.hosts))

    def host_of(self, service: str, index: int) -> str:
        """The host name of a service's index-th (1-based) instance; "" on one host."""
        hosts = self.services[service].hosts
        if self.hosts is None or not hosts:
            return ""
        return hosts[0] if len(hosts) == 1 else hosts[index - 1]

    @property
    def broker_origin(self) -> str:
        """Where the file sets the broker, e.g. `souk.yaml:4`; `topology` when it does not."""
        return self._broker_origin or "topology"

    def module_of(self, service: str) -> str:
        """The module run as `python -m MODULE` for a service."""
        return self.services[service].module or service.replace("-", "_")


def default_topology_path() -> Path:
    """The topology shipped inside the package, used when no file is given or found."""
    return Path(str(resources.files("souk") / "default_topology.yaml"))


def resolve_topology(option: Path | None, cwd: Path) -> tuple[Path, bool]:
    """Choose the topology file: the option, else `souk.yaml` in cwd, else the default one."""
    if option is not None:
        return option, False
    local = cwd / DEFAULT_TOPOLOGY_NAME
    if local.is_file():
        return local, False
    return default_topology_path(), True


def load_topology(path: Path, *, display_name: str | None = None) -> Topology:
    """Read and validate a topology file; raise TopologyError naming file, line and key."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError([f"{name}: cannot read topology file: {exc.strerror or exc}"]) from exc
    return parse_topology(text, name)


def parse_topology(text: str, name: str) -> Topology:
    """Validate topology YAML text; `name` is the file name used in error messages."""
    node, data = _compose_and_construct(text, name)
    if data is None:
        data = {}
    problems = _duplicate_keys(node, name)
    if problems:
        raise TopologyError(problems)
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        located = sorted(
            ((_line_of(node, error["loc"]), _dotted(error["loc"]), error["msg"]))
            for error in exc.errors(include_url=False)
        )
        raise TopologyError(
            [
                f"{name}:{line}: {key}: {msg}" if key else f"{name}:{line}: {msg}"
                for line, key, msg in located
            ]
        ) from None
    if isinstance(data, dict) and "broker" in data:
        topology._broker_origin = f"{name}:{_line_of(node, ('broker', 'url'))}"
    return topology


def env_value(value: object) -> str:
    """An env entry as passed to the process: strings as is, anything else JSON-encoded."""
    return value if isinstance(value, str) else json.dumps(value)


def _compose_and_construct(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        detail = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem and exc.context_mark is not None:
            detail += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise TopologyError([f"{name}:{line}: invalid YAML: {detail}"]) from None
    except yaml.YAMLError as exc:
        raise TopologyError([f"{name}:1: invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    return node, data


def _duplicate_keys(node: yaml.Node | None, name: str, path: str = "") -> list[str]:
    # PyYAML silently keeps the last of two equal keys; a topology with two `catalog:` entries
    # is almost certainly a mistake, so say so.
    problems: list[str] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            key_text = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            child = f"{path}.{key_text}" if path else key_text
            if key_text in seen:
                problems.append(f"{name}:{key.start_mark.line + 1}: {child}: duplicate key")
            seen.add(key_text)
            problems.extend(_duplicate_keys(value, name, child))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, name, f"{path}[{index}]"))
    return problems


def _line_of(root: yaml.Node | None, loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the deepest node of `loc` that exists in the file."""
    if root is None:
        return 1
    node: yaml.Node = root
    line = root.start_mark.line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                (
                    (key, value)
                    for key, value in node.value
                    if isinstance(key, yaml.ScalarNode) and key.value == str(part)
                ),
                None,
            )
            if match is None:
                break
            # The key's line, not the value's: a block mapping value starts on the next line.
            line = match[0].start_mark.line
            node = match[1]
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return line + 1


def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else part
    return text
