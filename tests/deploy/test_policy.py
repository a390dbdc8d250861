"""What a reviewer checks in the built manifests: pinned images, limits and probes, no root,
no privilege escalation, a read-only root filesystem, a NetworkPolicy for every Service that
mirrors the call graph, a migration Job per service with a database, a disruption budget and
an autoscaler per Deployment, and a grace period longer than the drain."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from chassis import ServiceSettings
from mesh.policy import Policy
from souk.topology import Topology, load_topology

from .conftest import OVERLAYS, ROOT

Manifest = dict[str, Any]
TOPOLOGY = ROOT / "cli" / "src" / "souk" / "default_topology.yaml"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(TOPOLOGY)


def of_kind(resources: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def pod_specs(resources: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for resource in resources:
        if resource["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield (
                f"{resource['kind']}/{resource['metadata']['name']}",
                resource["spec"]["template"]["spec"],
            )


def container_problems(workload: str, pod: Manifest, *, probes: bool) -> list[str]:
    """What is wrong with a pod's containers, as a reviewer would word it."""
    problems = []
    pod_context = pod.get("securityContext", {})
    for container in pod["containers"]:
        where = f"{workload}/{container['name']}"
        image = container["image"]
        if ":" not in image.rpartition("/")[2] and "@sha256:" not in image:
            problems.append(f"{where}: image {image} has no tag")
        if image.endswith(":latest"):
            problems.append(f"{where}: image {image} is 'latest'")
        limits = container.get("resources", {}).get("limits", {})
        if not {"cpu", "memory"} <= set(limits):
            problems.append(f"{where}: no cpu and memory limits")
        if probes and not ("readinessProbe" in container and "livenessProbe" in container):
            problems.append(f"{where}: no readiness and liveness probes")
        context = container.get("securityContext", {})
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"{where}: may run as root")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: privilege escalation allowed")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: writable root filesystem")
        if "ALL" not in context.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: capabilities not dropped")
    return problems


def allows(policy: Manifest, direction: str, peer: str, port: int) -> bool:
    """Whether a NetworkPolicy's rules of one direction admit pods named ``peer`` on ``port``."""
    peers_key = "from" if direction == "ingress" else "to"
    for rule in policy["spec"].get(direction, []):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        for selector in rule.get(peers_key, []):
            if "namespaceSelector" in selector:
                continue
            labels = selector.get("podSelector", {}).get("matchLabels", {})
            if labels.get("app.kubernetes.io/name") == peer:
                return True
    return False


def test_the_review_catches_a_careless_deployment() -> None:
    careless = {
        "containers": [{"name": "app", "image": "souk:latest", "resources": {}}],
    }
    problems = container_problems("Deployment/careless", careless, probes=True)
    assert problems == [
        "Deployment/careless/app: image souk:latest is 'latest'",
        "Deployment/careless/app: no cpu and memory limits",
        "Deployment/careless/app: no readiness and liveness probes",
        "Deployment/careless/app: may run as root",
        "Deployment/careless/app: privilege escalation allowed",
        "Deployment/careless/app: writable root filesystem",
        "Deployment/careless/app: capabilities not dropped",
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_pinned_limited_probed_and_unprivileged(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    problems = [
        problem
        for workload, pod in pod_specs(built[overlay])
        for problem in container_problems(
            workload, pod, probes=workload.startswith(("Deployment", "StatefulSet"))
        )
    ]
    assert problems == []
    assert len(list(pod_specs(built[overlay]))) > 10
    assert "StatefulSet/souk-redis" in dict(pod_specs(built[overlay]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_the_services_health_routes_and_grpc_ports_are_declared(
    built: dict[str, list[Manifest]], overlay: str, topology: Topology
) -> None:
    deployments = of_kind(built[overlay], "Deployment")
    services = of_kind(built[overlay], "Service")
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        service_ports = {p["name"] for p in services[name]["spec"]["ports"]}
        expected = {"http", "grpc"} if topology.services[name].grpc else {"http"}
        assert set(ports) == expected == service_ports, name
    assert "grpc" in {p["name"] for p in services["inventory"]["spec"]["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_network_policy_for_its_pods(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    policies = list(of_kind(built[overlay], "NetworkPolicy").values())
    for name, service in of_kind(built[overlay], "Service").items():
        selecting = [
            p
            for p in policies
            if p["spec"]["podSelector"].get("matchLabels") == service["spec"]["selector"]
            and "Ingress" in p["spec"]["policyTypes"]
        ]
        assert selecting, f"Service {name} has no NetworkPolicy for its pods"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_mirror_the_call_graph(
    built: dict[str, list[Manifest]], overlay: str, topology: Topology
) -> None:
    policies = of_kind(built[overlay], "NetworkPolicy")
    mesh = Policy.default()
    deployed = set(of_kind(built[overlay], "Deployment"))
    for caller in sorted(deployed):
        for callee in sorted(deployed - {caller}):
            port = 50051 if topology.services[callee].grpc else 8000
            calls = callee in topology.services[caller].upstreams
            admitted = any(caller in rule.callers for rule in mesh.for_callee(callee).rules)
            assert allows(policies[caller], "egress", callee, port) == calls, (caller, callee)
            assert allows(policies[callee], "ingress", caller, port) == admitted, (caller, callee)
    # The topology's calls are all ones the mesh policy admits: both agree on the graph.
    assert all(
        allows(policies[up], "ingress", name, 50051 if topology.services[up].grpc else 8000)
        for name in deployed
        for up in topology.services[name].upstreams
        if up in deployed
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_migration_job_per_service_with_a_database_and_replicas_skip_migrating(
    built: dict[str, list[Manifest]], overlay: str, topology: Topology
) -> None:
    jobs = of_kind(built[overlay], "Job")
    configs = of_kind(built[overlay], "ConfigMap")
    with_database = {
        name for name in of_kind(built[overlay], "Deployment") if topology.services[name].database
    }
    assert set(jobs) == {f"{name}-migrate" for name in with_database}
    for name in with_database:
        prefix = name.upper().replace("-", "_")
        env = {
            e["name"]: e.get("value")
            for e in jobs[f"{name}-migrate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env[f"{prefix}_MIGRATE"] == "only"
        assert configs[f"{name}-settings"]["data"][f"{prefix}_MIGRATE"] == "skip"
    assert "gateway-migrate" not in jobs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_and_an_autoscaler(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    budgets = of_kind(built[overlay], "PodDisruptionBudget")
    autoscalers = of_kind(built[overlay], "HorizontalPodAutoscaler")
    for name, deployment in of_kind(built[overlay], "Deployment").items():
        labels = deployment["spec"]["selector"]["matchLabels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"] == labels
        target = autoscalers[name]["spec"]
        assert target["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert target["minReplicas"] == deployment["spec"]["replicas"] <= target["maxReplicas"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_grace_period_outlasts_the_pre_stop_pause_and_the_drain(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    configs = of_kind(built[overlay], "ConfigMap")
    default_drain = ServiceSettings().shutdown_timeout
    for name, deployment in of_kind(built[overlay], "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        prefix = name.upper().replace("-", "_")
        drain = float(
            configs[f"{name}-settings"]["data"].get(f"{prefix}_SHUTDOWN_TIMEOUT", default_drain)
        )
        pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] >= pause + drain, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_runs_as_its_own_mesh_identity(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    accounts = of_kind(built[overlay], "ServiceAccount")
    for name, deployment in of_kind(built[overlay], "Deployment").items():
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == name
        assert name in accounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_committed(built: dict[str, list[Manifest]], overlay: str) -> None:
    assert of_kind(built[overlay], "Secret") == {}
    for config in of_kind(built[overlay], "ConfigMap").values():
        text = json.dumps(config["data"]).lower()
        assert "secret" not in text, config["metadata"]["name"]
        assert "password" not in text, config["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_telemetry_goes_to_the_clusters_tools_under_the_services_names(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    rules_file = ROOT / "cli" / "src" / "souk" / "prometheus_rules" / "rules.yml"
    (rule,) = of_kind(built[overlay], "PrometheusRule").values()
    assert rule["spec"]["groups"] == yaml.safe_load(rules_file.read_text())["groups"]
    (monitor,) = of_kind(built[overlay], "PodMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    configs = of_kind(built[overlay], "ConfigMap")
    for name, deployment in of_kind(built[overlay], "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        # Souk's rules group by `job`: the PodMonitor takes it from the label naming the service.
        assert labels[monitor["spec"]["jobLabel"]] == name
        prefix = name.upper().replace("-", "_")
        endpoint = configs[f"{name}-settings"]["data"][f"{prefix}_OTLP_ENDPOINT"]
        assert endpoint.startswith("http://otel-collector.")


def test_in_prod_every_service_keeps_a_pod_through_a_node_drain(
    built: dict[str, list[Manifest]], topology: Topology
) -> None:
    budgets = of_kind(built["prod"], "PodDisruptionBudget")
    autoscalers = of_kind(built["prod"], "HorizontalPodAutoscaler")
    for name, deployment in of_kind(built["prod"], "Deployment").items():
        replicas = deployment["spec"]["replicas"]
        assert replicas == max(2, topology.services[name].replicas), name
        assert autoscalers[name]["spec"]["minReplicas"] == replicas
        assert budgets[name]["spec"]["maxUnavailable"] < replicas
    dev = of_kind(built["dev"], "Deployment")
    assert dev["orders"]["spec"]["replicas"] == topology.services["orders"].replicas == 1


def secret_refs(resources: list[Manifest]) -> set[tuple[str, str]]:
    found = set()
    for _, pod in pod_specs(resources):
        for container in pod["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.add((ref["name"], ref["key"]))
    return found


def test_every_secret_the_pods_read_is_made_by_the_script_or_by_its_engine(
    built: dict[str, list[Manifest]],
) -> None:
    script = (ROOT / "deploy" / "kubernetes" / "create-secrets.sh").read_text()
    made = set()
    for command in script.replace("\\\n", " ").splitlines():
        match = re.search(r"create secret generic (\S+)", command)
        if match:
            made |= {
                (match.group(1), key) for key in re.findall(r"--from-literal=([\w-]+)=", command)
            }
    # The RabbitMQ cluster operator makes its default user's Secret itself.
    by_engine = {("souk-broker-default-user", "username"), ("souk-broker-default-user", "password")}
    needed = secret_refs(built["prod"])
    assert needed - made - by_engine == set()
    assert ("souk-client-secrets", "orders") in needed & made
    assert "openssl rand" in script
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_for_the_rate_limits_serves_the_gateway_alone(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    (redis,) = of_kind(built[overlay], "StatefulSet").values()
    service = of_kind(built[overlay], "Service")["souk-redis"]
    assert service["spec"]["selector"] == redis["spec"]["selector"]["matchLabels"]
    [port] = service["spec"]["ports"]
    pod = redis["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].startswith("docker.io/library/redis:7.")
    # The password comes from the Secret the script makes, never from the manifest.
    assert "$(REDIS_PASSWORD)" in container["args"]
    assert ("souk-redis", "redis-password") in secret_refs([redis])
    assert pod["securityContext"]["runAsUser"] != 0
    assert redis["spec"]["template"]["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"

    # Wired into the gateway's settings: its Redis URL names the Service and its port.
    gateway = of_kind(built[overlay], "Deployment")["gateway"]
    env = {e["name"]: e for e in gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    url = env["GATEWAY_REDIS_URL"]["value"]
    assert url == f"redis://:$(SOUK_REDIS_PASSWORD)@souk-redis:{port['port']}/0"

    # Only the gateway reaches it, and it reaches nothing (no egress rule at all).
    policies = of_kind(built[overlay], "NetworkPolicy")
    policy = policies["redis"]
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert policy["spec"]["egress"] == []
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]
    assert [p["port"] for p in rule["ports"]] == [port["port"]]
    labels = service["spec"]["selector"]
    for name, other in policies.items():
        reaches = any(
            selector.get("podSelector", {}).get("matchLabels") == labels
            for egress in other["spec"].get("egress", [])
            for selector in egress.get("to", [])
        )
        assert reaches == (name == "gateway"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_sets_the_gateways_trusted_proxies_and_ops_networks(
    built: dict[str, list[Manifest]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.settings import GatewaySettings  # noqa: PLC0415 - the gateway reads it so

    data = of_kind(built[overlay], "ConfigMap")["gateway-settings"]["data"]
    # Istio's sidecar hands the gateway every request from 127.0.0.6: it is the one proxy
    # whose X-Forwarded-For (set by the ingress) it believes; its own routes answer loopback,
    # where Istio's agent probes and scrapes from.
    assert json.loads(data["GATEWAY_FORWARDED_ALLOW_IPS"]) == ["127.0.0.6"]
    assert json.loads(data["GATEWAY_OPS_NETWORKS"]) == ["127.0.0.0/8", "::1/128"]
    # The ConfigMap, as the pod's environment, loads as the gateway's settings.
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()
    assert settings.forwarded_allow_ips == ["127.0.0.6"]
    assert [str(network) for network in settings.ops_networks] == ["127.0.0.0/8", "::1/128"]
