"""The Istio resources rendered from the mesh's policy and traffic settings decide and behave
as the local mesh's own Envoy configuration does: the same callers on the same routes, the
same balancing, connection pool and outlier detection."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.rbac.v3 import rbac_pb2 as rbac_config_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from mesh.istio import istio_resources, principal
from mesh.policy import HEALTH_ROUTES, Policy
from mesh.registry import Sidecar
from mesh.resources import CLUSTER, LISTENER, MeshView, resources_for
from mesh.settings import MeshSettings
from mesh.traffic import TrafficSettings

NAMESPACE = "souk"
TRUST_DOMAIN = "souk.local"
INGRESS = f"{TRUST_DOMAIN}/ns/{NAMESPACE}/sa/souk-istio"
CALLERS = [
    "gateway",
    "bff-web",
    "bff-mobile",
    "catalog",
    "inventory",
    "orders",
    "billing",
    "notifications",
    "order-history",
    "identity",
    "payment-primary",
    "souk-cli",
    "stranger",
]
PATHS = [
    "/",
    "/products",
    "/orders/1",
    "/souk.inventory.v1.Inventory/Reserve",
    "/internal/",
    "/internal/dead-letters",
    "/internal/dead-letters/7/replay",
    "/internal/revocations",
    "/internal/keys/rotate",
    "/internal/rebuild",
    "/v1/simulation",
    "/v1/payments",
    *HEALTH_ROUTES,
]
CUSTOM_TRAFFIC = {
    "default": {"lb_policy": "round_robin", "consecutive_5xx": 7, "max_connections": 64},
    "catalog": {"lb_policy": "ring_hash", "base_ejection_time": 0.5, "max_pending_requests": 9},
}

Resource = dict[str, Any]


def local_config(settings: MeshSettings, callee: str) -> tuple[rbac_config_pb2.RBAC, Message]:
    """The RBAC rules of the callee's inbound listener and a caller's cluster for it."""
    view = MeshView(sidecars=(), traffic=settings.traffic, trust_domain=TRUST_DOMAIN)
    inbound = Sidecar("x-1", callee, 7000, "unix:/x", outbound={callee: 7001})
    found = resources_for(inbound, view, settings.policy.for_callee(callee))
    listener = found[LISTENER]["inbound"]
    manager = hcm_pb2.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
    rbac = rbac_pb2.RBAC()
    (http_filter,) = [f for f in manager.http_filters if f.name == "envoy.filters.http.rbac"]
    http_filter.typed_config.Unpack(rbac)
    return rbac.rules, found[CLUSTER][callee]


def _string_matches(matcher: Any, value: str) -> bool:
    kind = matcher.WhichOneof("match_pattern")
    if kind == "exact":
        return bool(value == matcher.exact)
    if kind == "prefix":
        return value.startswith(matcher.prefix)
    raise AssertionError(f"matcher {kind} not evaluated here")


def _permits(permission: Any, path: str) -> bool:
    kind = permission.WhichOneof("rule")
    if kind == "or_rules":
        return any(_permits(rule, path) for rule in permission.or_rules.rules)
    if kind == "and_rules":
        return all(_permits(rule, path) for rule in permission.and_rules.rules)
    if kind == "not_rule":
        return not _permits(permission.not_rule, path)
    if kind == "url_path":
        return _string_matches(permission.url_path.path, path)
    raise AssertionError(f"permission {kind} not evaluated here")


def envoy_allows(rules: rbac_config_pb2.RBAC, spiffe_id: str, path: str) -> bool:
    """Envoy's RBAC decision (action ALLOW): some policy has a matching principal and path."""
    assert rules.action == rbac_config_pb2.RBAC.ALLOW
    return any(
        any(_string_matches(p.authenticated.principal_name, spiffe_id) for p in policy.principals)
        and any(_permits(permission, path) for permission in policy.permissions)
        for policy in rules.policies.values()
    )


def _istio_matches(pattern: str, value: str) -> bool:
    # Istio's string match: exact, "prefix*", "*suffix" or "*".
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def istio_allows(policy: Resource, istio_principal: str, path: str) -> bool:
    """Istio's decision for one ALLOW AuthorizationPolicy: some rule's from and to match."""
    assert policy["spec"]["action"] == "ALLOW"
    for rule in policy["spec"]["rules"]:
        sources = [s["source"] for s in rule.get("from", [])]
        if sources and not any(
            any(_istio_matches(p, istio_principal) for p in s.get("principals", []))
            for s in sources
        ):
            continue
        operations = [t["operation"] for t in rule.get("to", [])]
        if operations and not any(
            any(_istio_matches(p, path) for p in op.get("paths", ["*"]))
            and not any(_istio_matches(p, path) for p in op.get("notPaths", []))
            for op in operations
        ):
            continue
        return True
    return False


def rendered(settings: MeshSettings, services: list[str]) -> dict[tuple[str, str], Resource]:
    resources = istio_resources(
        settings, services, namespace=NAMESPACE, ingress_principal=INGRESS, public="gateway"
    )
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


@pytest.fixture
def shipped() -> MeshSettings:
    return MeshSettings.parse({})


def test_the_istio_evaluator_is_not_a_yes_man() -> None:
    policy = {
        "spec": {
            "action": "ALLOW",
            "rules": [
                {
                    "from": [{"source": {"principals": ["td/ns/a/sa/orders"]}}],
                    "to": [{"operation": {"paths": ["/*"], "notPaths": ["/internal/*"]}}],
                }
            ],
        }
    }
    assert istio_allows(policy, "td/ns/a/sa/orders", "/orders")
    assert not istio_allows(policy, "td/ns/a/sa/orders", "/internal/x")
    assert not istio_allows(policy, "td/ns/a/sa/billing", "/orders")
    assert not istio_allows({"spec": {"action": "ALLOW", "rules": []}}, "td/ns/a/sa/x", "/")


def test_every_callee_admits_the_same_callers_on_the_same_routes_as_the_local_mesh(
    shipped: MeshSettings,
) -> None:
    callees = sorted(shipped.policy.callees)
    istio = rendered(shipped, callees)
    compared = 0
    for callee in callees:
        rules, _ = local_config(shipped, callee)
        policy = istio[("AuthorizationPolicy", callee)]
        for caller in CALLERS:
            spiffe_id = f"spiffe://{TRUST_DOMAIN}/service/{caller}"
            for path in PATHS:
                local = envoy_allows(rules, spiffe_id, path)
                cluster = istio_allows(policy, principal(caller, NAMESPACE, TRUST_DOMAIN), path)
                assert cluster == local, (caller, callee, path)
                compared += int(local)
    assert compared > 100  # the policy admits plenty: the comparison is not of two refusals


def test_the_public_entry_takes_the_ingress_gateway_only(shipped: MeshSettings) -> None:
    policy = rendered(shipped, ["gateway", "catalog"])[("AuthorizationPolicy", "gateway")]
    assert istio_allows(policy, INGRESS, "/api/catalog/products")
    assert not istio_allows(policy, principal("bff-web", NAMESPACE, TRUST_DOMAIN), "/api/orders")
    catalog = rendered(shipped, ["gateway", "catalog"])[("AuthorizationPolicy", "catalog")]
    assert not istio_allows(catalog, INGRESS, "/products")


def test_mtls_is_strict_for_the_whole_namespace(shipped: MeshSettings) -> None:
    peer = rendered(shipped, ["catalog"])[("PeerAuthentication", "default")]
    assert peer["metadata"]["namespace"] == NAMESPACE
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}}


@pytest.mark.parametrize("traffic", [{}, CUSTOM_TRAFFIC], ids=["defaults", "overridden"])
def test_destination_rules_carry_the_local_balancing_pool_and_ejection(
    traffic: dict[str, Any],
) -> None:
    settings = MeshSettings(policy=Policy.default(), traffic=TrafficSettings.parse(traffic))
    istio = rendered(settings, ["catalog", "orders"])
    for callee in ("catalog", "orders"):
        _, cluster = local_config(settings, callee)
        assert isinstance(cluster, cluster_pb2.Cluster)
        policy = istio[("DestinationRule", callee)]["spec"]["trafficPolicy"]
        balancer = policy["loadBalancer"]
        expected_lb = cluster_pb2.Cluster.LbPolicy.Name(cluster.lb_policy)
        if expected_lb == "RING_HASH":
            assert "ringHash" in balancer["consistentHash"]
        else:
            assert balancer == {"simple": expected_lb}
        pool = policy["connectionPool"]
        thresholds = cluster.circuit_breakers.thresholds[0]
        assert pool["tcp"]["maxConnections"] == thresholds.max_connections.value
        assert (
            pool["tcp"]["connectTimeout"]
            == f"{cluster.connect_timeout.ToTimedelta().total_seconds():g}s"
        )
        assert pool["http"]["http1MaxPendingRequests"] == thresholds.max_pending_requests.value
        assert pool["http"]["http2MaxRequests"] == thresholds.max_requests.value
        assert pool["http"]["maxRetries"] == thresholds.max_retries.value
        ejection = policy["outlierDetection"]
        outlier = cluster.outlier_detection
        assert ejection["consecutive5xxErrors"] == outlier.consecutive_5xx.value
        assert ejection["consecutiveGatewayErrors"] == outlier.consecutive_gateway_failure.value
        assert ejection["interval"] == f"{outlier.interval.ToTimedelta().total_seconds():g}s"
        assert ejection["baseEjectionTime"] == (
            f"{outlier.base_ejection_time.ToTimedelta().total_seconds():g}s"
        )
        assert ejection["maxEjectionPercent"] == outlier.max_ejection_percent.value
        # Healthy panic off locally (threshold 0) is Istio's minHealthPercent 0.
        assert cluster.common_lb_config.healthy_panic_threshold.value == 0
        assert ejection["minHealthPercent"] == 0
    if traffic:
        catalog = istio[("DestinationRule", "catalog")]["spec"]["trafficPolicy"]
        assert catalog["connectionPool"]["http"]["http1MaxPendingRequests"] == 9
        assert catalog["outlierDetection"]["baseEjectionTime"] == "0.5s"
        orders = istio[("DestinationRule", "orders")]["spec"]["trafficPolicy"]
        assert orders["loadBalancer"] == {"simple": "ROUND_ROBIN"}
        assert orders["outlierDetection"]["consecutive5xxErrors"] == 7


def test_virtual_services_carry_the_local_timeout_and_retries(shipped: MeshSettings) -> None:
    service = rendered(shipped, ["orders"])[("VirtualService", "orders")]["spec"]
    traffic = shipped.traffic.for_upstream("orders")
    idempotent, other = service["http"]
    assert idempotent["match"] == [{"method": {"regex": "GET|HEAD"}}]
    assert "5xx" in idempotent["retries"]["retryOn"]
    assert "5xx" not in other["retries"]["retryOn"]
    for route in (idempotent, other):
        assert route["timeout"] == f"{traffic.timeout:g}s"
        assert route["retries"]["attempts"] == traffic.num_retries
