"""The mesh on Kubernetes: Istio resources rendered from the same policy and traffic settings
the local control plane compiles into Envoy configuration, so one policy drives both shapes.

- ``PeerAuthentication`` STRICT for the namespace: mTLS only, as the local inbound listeners;
- per callee an ``AuthorizationPolicy`` (ALLOW) with a rule per policy rule, matching the
  callers' SPIFFE principals, its routes as path prefixes and its closed routes as
  ``notPaths`` (the local RBAC filter's rules), plus the health routes for every identity of
  the trust domain;
- per callee a ``DestinationRule`` (balancing, connection pool, outlier detection) and a
  ``VirtualService`` (timeout and retries, GET/HEAD retried on more errors than the rest).

Istio names a workload ``spiffe://<trust domain>/ns/<namespace>/sa/<service account>``: each
service runs as the service account of its own name, so ``spiffe://souk.local/service/S``
locally is ``souk.local/ns/<namespace>/sa/S`` here. The public entry (the local gateway's
port) is the ingress Gateway's identity instead.

``python -m mesh.istio --settings JSON --service S ...`` prints them as YAML (`souk render
kubernetes` runs it: the command line does not import the mesh).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from mesh.policy import HEALTH_ROUTES, CalleePolicy
from mesh.settings import MeshSettings
from mesh.traffic import IDEMPOTENT_RETRIES, SAFE_RETRIES, Traffic

SECURITY = "security.istio.io/v1"
NETWORKING = "networking.istio.io/v1"
Resource = dict[str, Any]

_LB = {"round_robin": "ROUND_ROBIN", "least_request": "LEAST_REQUEST"}


def principal(service: str, namespace: str, trust_domain: str) -> str:
    """The Istio principal of a service's pods (its service account's SPIFFE id, no scheme)."""
    return f"{trust_domain}/ns/{namespace}/sa/{service}"


def istio_resources(
    settings: MeshSettings,
    services: Sequence[str],
    *,
    namespace: str,
    ingress_principal: str | None = None,
    public: str | None = None,
) -> list[Resource]:
    """Every Istio resource for ``services`` (the deployed ones) in ``namespace``.

    ``public`` is the service the ingress Gateway (``ingress_principal``) sends the outside
    world's requests to: locally nothing in the mesh calls it, its port is the entry.
    """
    resources: list[Resource] = [
        {
            "apiVersion": SECURITY,
            "kind": "PeerAuthentication",
            "metadata": {"name": "default", "namespace": namespace},
            "spec": {"mtls": {"mode": "STRICT"}},
        }
    ]
    for service in services:
        callee = settings.policy.for_callee(service)
        rules = _rules(callee, namespace, settings.trust_domain)
        if service == public and ingress_principal:
            rules.append({"from": [{"source": {"principals": [ingress_principal]}}]})
        resources.append(
            {
                "apiVersion": SECURITY,
                "kind": "AuthorizationPolicy",
                "metadata": {"name": service, "namespace": namespace},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/name": service}},
                    "action": "ALLOW",
                    "rules": rules,
                },
            }
        )
    for service in services:
        traffic = settings.traffic.for_upstream(service)
        host = f"{service}.{namespace}.svc.cluster.local"
        resources.append(_destination_rule(service, host, namespace, traffic))
        resources.append(_virtual_service(service, host, namespace, traffic))
    return resources


def _prefix(route: str) -> str:
    return f"{route}*"


def _rules(policy: CalleePolicy, namespace: str, trust_domain: str) -> list[Resource]:
    rules: list[Resource] = [
        {
            "from": [{"source": {"principals": [f"{trust_domain}/*"]}}],
            "to": [{"operation": {"paths": list(HEALTH_ROUTES)}}],
        }
    ]
    for rule in policy.rules:
        operation: Resource = {"paths": [_prefix(route) for route in rule.routes]}
        shut = [closed for closed in policy.closed if not rule.opens(closed)]
        if shut:
            operation["notPaths"] = [_prefix(closed) for closed in shut]
        rules.append(
            {
                "from": [
                    {
                        "source": {
                            "principals": [
                                principal(caller, namespace, trust_domain)
                                for caller in rule.callers
                            ]
                        }
                    }
                ],
                "to": [{"operation": operation}],
            }
        )
    return rules


def duration(seconds: float) -> str:
    """A protobuf duration as Istio reads it: ``1s``, ``0.5s``."""
    return f"{seconds:g}s"


def _destination_rule(service: str, host: str, namespace: str, traffic: Traffic) -> Resource:
    if traffic.lb_policy == "ring_hash":
        balancer: Resource = {"consistentHash": {"ringHash": {"minimumRingSize": 1024}}}
    else:
        balancer = {"simple": _LB[traffic.lb_policy]}
    return {
        "apiVersion": NETWORKING,
        "kind": "DestinationRule",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {
            "host": host,
            "trafficPolicy": {
                "loadBalancer": balancer,
                "connectionPool": {
                    "tcp": {
                        "maxConnections": traffic.max_connections,
                        "connectTimeout": duration(traffic.connect_timeout),
                    },
                    "http": {
                        "http1MaxPendingRequests": traffic.max_pending_requests,
                        "http2MaxRequests": traffic.max_requests,
                        "maxRetries": traffic.max_retries,
                    },
                },
                "outlierDetection": {
                    "consecutive5xxErrors": traffic.consecutive_5xx,
                    "consecutiveGatewayErrors": traffic.consecutive_gateway_failure,
                    "interval": duration(traffic.outlier_interval),
                    "baseEjectionTime": duration(traffic.base_ejection_time),
                    "maxEjectionPercent": traffic.max_ejection_percent,
                    # Healthy panic off, as locally: a wholly failing upstream gets no traffic.
                    "minHealthPercent": 0,
                },
                "tls": {"mode": "ISTIO_MUTUAL"},
            },
        },
    }


def _virtual_service(service: str, host: str, namespace: str, traffic: Traffic) -> Resource:
    def route(retry_on: str, methods: Iterable[str] | None) -> Resource:
        retries: Resource = {"attempts": traffic.num_retries, "retryOn": retry_on}
        if traffic.per_try_timeout:
            retries["perTryTimeout"] = duration(traffic.per_try_timeout)
        http: Resource = {
            "route": [{"destination": {"host": host}}],
            "timeout": duration(traffic.timeout),
            "retries": retries,
        }
        if methods:
            http["match"] = [{"method": {"regex": "|".join(methods)}}]
        return http

    return {
        "apiVersion": NETWORKING,
        "kind": "VirtualService",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {
            "hosts": [host],
            "http": [route(IDEMPOTENT_RETRIES, ["GET", "HEAD"]), route(SAFE_RETRIES, None)],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a value used twice is written twice, never as an anchor and alias."""

    def ignore_aliases(self, _data: Any) -> bool:
        return True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mesh.istio", description=__doc__)
    parser.add_argument("--settings", default="{}", help="the mesh section of souk.yaml, as JSON")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service", action="append", default=[], help="a deployed service")
    parser.add_argument("--public", help="the service the ingress Gateway sends requests to")
    parser.add_argument("--ingress-principal", help="the ingress Gateway's Istio principal")
    arguments = parser.parse_args(argv)
    resources = istio_resources(
        MeshSettings.parse(json.loads(arguments.settings)),
        arguments.service,
        namespace=arguments.namespace,
        public=arguments.public,
        ingress_principal=arguments.ingress_principal,
    )
    yaml.dump_all(resources, sys.stdout, Dumper=_Dumper, sort_keys=False)


if __name__ == "__main__":
    main()
