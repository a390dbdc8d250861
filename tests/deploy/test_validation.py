"""Offline validation of every built overlay: kustomize builds it, every built-in resource is
valid for the pinned Kubernetes release (strict: no unknown field), and every custom resource
is valid against the schema of its CRD, vendored under third_party/ with its licence."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from .conftest import OVERLAYS, ROOT

KUBERNETES_VERSION = "1.37.0"
THIRD_PARTY = ROOT / "third_party"
CRD_FILES = (
    "cloudnative-pg/postgresql.cnpg.io_clusters.yaml",
    "cloudnative-pg/postgresql.cnpg.io_databases.yaml",
    "rabbitmq-cluster-operator/rabbitmq.com_rabbitmqclusters.yaml",
    "istio/crd-all.gen.yaml",
    "prometheus-operator/monitoring.coreos.com_prometheusrules.yaml",
    "prometheus-operator/monitoring.coreos.com_podmonitors.yaml",
    "gateway-api/gateway.networking.k8s.io_gateways.yaml",
    "gateway-api/gateway.networking.k8s.io_httproutes.yaml",
    "strimzi/040-Crd-kafka.yaml",
    "strimzi/045-Crd-kafkanodepool.yaml",
)
Manifest = dict[str, Any]
# The API groups the Kubernetes release itself serves (kubernetes-validate knows them).
BUILT_IN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}


@cache
def built_in_validator(api_version: str, kind: str) -> jsonschema.Validator:
    """The strict schema kubernetes-validate ships for the pinned release (its own
    ``validate`` reads the whole definitions file again for every resource: seconds here)."""
    group, _, version = api_version.rpartition("/")
    name = f"{kind.lower()}-{group.split('.')[0] + '-' if group else ''}{version}.json"
    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
    schema = schema_contents(f"{folder}/{name}", KUBERNETES_VERSION)
    definitions = schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def built_in_problems(resource: Manifest) -> list[str]:
    validator = built_in_validator(resource["apiVersion"], resource["kind"])
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(resource)
    ]


def group_of(resource: Manifest) -> str:
    api_version = str(resource["apiVersion"])
    return api_version.rpartition("/")[0]


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) → the served version's OpenAPI schema, closed to unknown fields."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for name in CRD_FILES:
        path = THIRD_PARTY / name
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", False):
                    continue
                api_version = f"{spec['group']}/{version['name']}"
                schema = version["schema"]["openAPIV3Schema"]
                # The root names spec and status (some also apiVersion, kind, metadata):
                # the API server's own fields stay open there, everything below is closed.
                for value in schema.get("properties", {}).values():
                    closed(value)
                schemas[(api_version, spec["names"]["kind"])] = schema
    return schemas


def closed(schema: Any) -> Any:
    """The schema with unknown fields refused, as the API server's strict field validation
    does: an object with declared properties takes no others unless it says so."""
    if isinstance(schema, dict):
        for value in schema.values():
            closed(value)
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for item in schema:
            closed(item)
    return schema


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Validator | None:
    schema = crd_schemas().get((api_version, kind))
    return None if schema is None else jsonschema.Draft7Validator(schema)


def crd_problems(resource: Manifest) -> list[str]:
    validator = crd_validator(resource["apiVersion"], resource["kind"])
    if validator is None:
        return [f"no vendored CRD defines {resource['apiVersion']} {resource['kind']}"]
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(resource)
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_built_in_resource_is_valid_for_the_pinned_kubernetes_release(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    problems = []
    for resource in built[overlay]:
        if group_of(resource) not in BUILT_IN_GROUPS:
            continue
        problems += [
            f"{resource['kind']}/{resource['metadata']['name']}: {problem}"
            for problem in built_in_problems(resource)
        ]
    assert problems == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_resource_is_valid_against_its_vendored_crd(
    built: dict[str, list[Manifest]], overlay: str
) -> None:
    problems = {
        f"{resource['kind']}/{resource['metadata']['name']}": crd_problems(resource)
        for resource in built[overlay]
        if group_of(resource) not in BUILT_IN_GROUPS
    }
    assert problems
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_crd_check_refuses_an_unknown_field_and_a_wrong_type() -> None:
    rule = {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {"name": "default"},
        "spec": {"mtls": {"mode": "STRICT", "strictly": True}},
    }
    pool = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "catalog"},
        "spec": {"host": "catalog", "trafficPolicy": {"outlierDetection": {"interval": 3}}},
    }
    unknown_kind = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}

    assert any("strictly" in problem for problem in crd_problems(rule))
    assert any("interval" in problem for problem in crd_problems(pool))
    assert crd_problems(unknown_kind) == ["no vendored CRD defines example.com/v1 Widget"]


def test_the_built_in_check_decides_as_kubernetes_validate_does(
    built: dict[str, list[Manifest]],
) -> None:
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "catalog"},
        "automountToken": False,
    }
    budget = next(r for r in built["dev"] if r["kind"] == "PodDisruptionBudget")
    wrong = {**budget, "spec": {**budget["spec"], "maxUnavailable": [1]}}

    for refused in (account, wrong):
        assert built_in_problems(refused)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(refused, KUBERNETES_VERSION, strict=True)
    assert built_in_problems(budget) == []
    kubernetes_validate.validate(budget, KUBERNETES_VERSION, strict=True)


def test_every_vendored_crd_names_its_origin_and_licence() -> None:
    folders = {Path(name).parts[0] for name in CRD_FILES}
    for folder in folders:
        files = {path.name for path in (THIRD_PARTY / folder).iterdir()}
        assert "ORIGIN.md" in files
        assert any(name.startswith("LICENSE") for name in files), folder
