"""Schemathesis, fed each OpenAPI document Souk publishes, finds no request that makes Souk
fail and no answer its document does not describe.

The gateway's merged document and each service's own are fuzzed on the suite's one booted
system (tests/e2e/conftest.py), with positive and negative data, a bounded number of
examples an operation, and a customer's (or the service's callers') token where the
document asks for one; then stateful runs follow the documents' OpenAPI links, so that what
a POST created is read back and changed. Checks: no 5xx, answers conform to their schema,
media type, status and headers, and data the document forbids is refused. Writes go to the
shared system, so they act for a customer of their own (orders, carts) or are refused; the
catalog's admin writes run against an in-process catalog of their own (the shared one's
listing is what other tests shop from).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response

from catalog.app import create_app
from catalog.settings import CatalogSettings
from chassis.testing import ReadableTokens
from souk.testing import SoukSystem, customer_token

from .conftest import ORDERS_CLIENT_ID, PASSWORD, bearer, service_token

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
# Per operation and generation mode: the whole module stays within a couple of minutes.
EXAMPLES = 12
STATEFUL_EXAMPLES = 8
STATEFUL_STEPS = 6
_SETTINGS = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "suppress_health_check": list(hypothesis.HealthCheck),
}

Send = Callable[[Any, dict[str, str] | None], Any]


@dataclass
class Target:
    """One document and how its operations are called: over HTTP, or in process."""

    name: str
    schema: Any
    send: Send
    # The token sent where the document asks for one (security), as a client would.
    headers: dict[str, str] | None = None
    # Operations (labels) that must be in the document: an empty one would pass vacuously.
    expected: set[str] = field(default_factory=set)
    # Operations not fuzzed here, each with why.
    skip: dict[str, str] = field(default_factory=dict)
    # The document has OpenAPI links: a stateful run follows them.
    links: bool = False


def _over_http(base_url: str) -> Send:
    def send(case: Any, headers: dict[str, str] | None) -> Any:
        return case.call(base_url=base_url, headers=headers, timeout=15)

    return send


def _in_process(client: TestClient) -> Send:
    def send(case: Any, headers: dict[str, str] | None) -> Response:
        kwargs = case.as_transport_kwargs(headers=headers)
        kwargs.pop("base_url", None)
        url = kwargs.pop("url")
        content = kwargs.pop("data", None)
        answer = client.request(
            kwargs.pop("method"),
            url[url.index("/", len("http://")) :] if url.startswith("http") else url,
            content=content,
            **{key: value for key, value in kwargs.items() if key in _HTTPX_KEYWORDS},
        )
        return Response.from_httpx(answer, verify=False)

    return send


_HTTPX_KEYWORDS = {"params", "headers", "cookies", "json", "files"}


def _configured(target: Target) -> Target:
    """The target's document told how its caller authenticates, and what not to generate."""
    if target.headers:
        target.schema.config.update(headers=target.headers)
    target.schema.config.generation.update(
        # The token is the caller's, not a parameter to fuzz (the probes in test_security.py
        # and each service's own tests send wrong ones on purpose).
        with_security_parameters=False,
        # An unknown query parameter is ignored, as HTTP APIs do: OpenAPI cannot say "no
        # other parameter", so schemathesis would count it as an invalid request accepted.
        allow_extra_parameters=False,
    )
    return target


def _fuzz(target: Target) -> list[str]:
    """Every operation's failures, each described."""
    failed: list[str] = []
    for result in target.schema.get_all_operations():
        operation = result.ok()
        if operation.label in target.skip:
            continue
        headers = target.headers
        try:
            _fuzz_operation(operation, target.send, headers)
        except (AssertionError, BaseExceptionGroup) as failure:
            failed.append(f"{target.name} {operation.label}: {_described(failure)}")
    return failed


def _fuzz_operation(operation: Any, send: Send, headers: dict[str, str] | None) -> None:
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @hypothesis.settings(max_examples=EXAMPLES, **_SETTINGS)
    @hypothesis.given(case=cases)
    def conforms(case: Any) -> None:
        response = send(case, headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    conforms()


def _stateful(target: Target) -> list[str]:
    """Follow the document's links: what one call created, the next reads or changes."""
    if not target.links:
        return []
    machine_class = target.schema.as_state_machine()

    class Machine(machine_class):  # type: ignore[misc,valid-type]
        def call(self, case: Any, **_: Any) -> Any:
            return target.send(case, target.headers)

        def validate_response(self, response: Any, case: Any, **_: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    try:
        Machine.run(
            settings=hypothesis.settings(
                max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS, **_SETTINGS
            )
        )
    except (AssertionError, BaseExceptionGroup) as failure:
        return [f"{target.name} (stateful): {_described(failure)}"]
    return []


def _described(failure: BaseException) -> str:
    if isinstance(failure, BaseExceptionGroup):
        return "\n".join(_described(inner) for inner in failure.exceptions)
    return str(failure)


def _document(base_url: str, *, expected: frozenset[str] = frozenset()) -> Any:
    """The document at ``base_url``; the gateway's, once it holds ``expected`` operations.

    The gateway leaves out an upstream whose document it could not fetch (for a few
    seconds): on a loaded machine, right after start-up, that can be one of them.
    """
    deadline = time.monotonic() + 30
    while True:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        labels = {result.ok().label for result in schema.get_all_operations()}
        if expected <= labels or time.monotonic() > deadline:
            return schema
        time.sleep(1)  # polling: the gateway refetches a missing upstream's document by itself


@pytest.fixture(scope="module")
def customer(souk: SoukSystem) -> dict[str, str]:
    """A customer of the fuzzer's own: orders and carts it makes are no other test's."""
    email = f"fuzzer-{uuid.uuid4().hex[:12]}@example.com"
    return bearer(customer_token(souk.gateway_url, email, PASSWORD))


@contextlib.contextmanager
def _own_catalog(tmp_path) -> Iterator[TestClient]:
    """A catalog of this test's own, in process, whose admin token is spelt out."""
    app = create_app(CatalogSettings(data_dir=tmp_path, instance="catalog-fuzz"))
    app.state.token_validator = ReadableTokens()
    with TestClient(app) as client:
        yield client


# One operation of each upstream the gateway routes to.
GATEWAY_OPERATIONS = frozenset(
    {
        "GET /api/catalog/products",
        "POST /api/orders",
        "GET /api/orders/{order_id}",
        "GET /api/notifications",
        "GET /api/order-history/customers/{customer_id}/orders",
        "PUT /api/mobile/cart/items/{product_id}",
        "POST /api/users",
        "POST /oauth/token",
        "GET /.well-known/jwks.json",
    }
)


def _targets(souk: SoukSystem, customer: dict[str, str]) -> list[Target]:
    payments = bearer(
        service_token(souk, ORDERS_CLIENT_ID, ["payments:read", "payments:write", "stock:read"])
    )

    def service(name: str, headers: dict[str, str] | None = None, **how: Any) -> Target:
        """A service's own document, fuzzed over HTTP at its own port."""
        url = souk.url(name)
        return Target(name, _document(url), _over_http(url), headers, **how)

    return [
        Target(
            "gateway",
            _document(souk.gateway_url, expected=GATEWAY_OPERATIONS),
            _over_http(souk.gateway_url),
            customer,
            expected=set(GATEWAY_OPERATIONS),
            links=True,
        ),
        service(
            "orders",
            customer,
            expected={"POST /orders", "GET /orders/{order_id}", "POST /orders/{order_id}/cancel"},
            links=True,
        ),
        service(
            "billing",
            payments,
            expected={"POST /payments", "POST /payments/{payment_id}/capture"},
            links=True,
        ),
        service("inventory", payments, expected={"GET /stock", "GET /stock/{sku}"}),
        service("notifications", customer, expected={"GET /notifications"}),
        service("order-history", customer, expected={"GET /customers/{customer_id}/orders"}),
        service(
            "identity",
            expected={"POST /users", "POST /oauth/token", "GET /oauth/authorize"},
            # Operators' routes (the gateway does not route them): rotating the signing
            # keys mid-suite would be a test of key rotation (test_key_rotation.py).
            skip={"POST /internal/keys/rotate": "rotates the shared system's keys"},
        ),
        service(
            "bff-mobile",
            customer,
            expected={"GET /mobile/home", "PUT /mobile/cart/items/{product_id}"},
            links=True,
        ),
        service("bff-web"),
    ]


# One backend is enough: the documents and the code that answers are the same on both.
ONE_SYSTEM = pytest.mark.parametrize("souk", ["sqlite"], indirect=True)


@ONE_SYSTEM
def test_no_request_makes_souk_fail_or_answer_off_its_documents(souk, customer, tmp_path):
    # Every operation is tried (schemathesis's pytest loader does not run on pytest 9 yet),
    # and every one that failed is reported, not only the first.
    failed: list[str] = []
    targets = _targets(souk, customer)
    with _own_catalog(tmp_path) as catalog:
        targets.append(
            Target(
                "catalog",
                schemathesis.openapi.from_dict(catalog.get("/openapi.json").json()),
                _in_process(catalog),
                {"Authorization": "Bearer souk-cli;catalog:write"},
                expected={"POST /products", "PATCH /products/{product_id}", "GET /products"},
                links=True,
            )
        )
        for target in targets:
            labels = {result.ok().label for result in target.schema.get_all_operations()}
            assert target.expected <= labels, (target.name, labels)
            failed += _fuzz(_configured(target))
            failed += _stateful(target)
    assert not failed, "\n\n".join(failed)


# -- links, followed from a resource this test surely created --------------------------------
# Generated data seldom names a product that exists, so the stateful runs above rarely get
# past a 422; here a valid request creates something and every link its answer's document
# names is followed: the target must answer 2xx, as its document says.


def _operation_by_id(schema: Any, operation_id: str) -> Any:
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") == operation_id:
            return operation
    raise AssertionError(f"a link names {operation_id}, which the document lacks")


def _link_value(expression: str, case: Any, answer: Any) -> Any:
    if expression.startswith("$response.body#/"):
        value = answer.json()
        for part in expression.removeprefix("$response.body#/").split("/"):
            value = value[part]
        return value
    if expression.startswith("$request.path."):
        return case.path_parameters[expression.removeprefix("$request.path.")]
    raise AssertionError(f"a link expression this test does not read: {expression}")


def _minimal_body(operation: Any) -> Any:
    """The smallest valid body the operation's document allows (deterministic)."""
    if "requestBody" not in operation.definition.raw:
        return None
    found = hypothesis.find(
        operation.as_strategy(GenerationMode.POSITIVE),
        lambda _: True,
        settings=hypothesis.settings(database=None, derandomize=True, deadline=None),
    )
    return found.body


def _follow_links(target: Target, label: str, headers: dict[str, str], **request: Any) -> list[str]:
    """Create with ``request`` at ``label``, then follow each link of the answer's status."""
    method, path = label.split(" ", 1)
    operation = target.schema[path][method]
    case = operation.Case(headers=headers, **request)
    answer = target.send(case, target.headers)
    failed = [] if 200 <= answer.status_code < 300 else [f"{label}: {answer.status_code}"]
    case.validate_response(answer, checks=CHECKS)
    documented = operation.definition.raw["responses"].get(str(answer.status_code), {})
    links = documented.get("links", {})
    if not links:
        failed.append(f"{target.name} {label}: its {answer.status_code} names no links")
    for name, link in links.items():
        follow = _operation_by_id(target.schema, link["operationId"])
        parameters = {
            key: _link_value(expression, case, answer)
            for key, expression in link["parameters"].items()
        }
        body = _minimal_body(follow)
        extra = {} if body is None else {"body": body, "media_type": "application/json"}
        followed = follow.Case(path_parameters=parameters, **extra)
        reached = target.send(followed, target.headers)
        try:
            followed.validate_response(reached, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as failure:
            failed.append(f"{target.name} {label} → {name}: {_described(failure)}")
            continue
        # 412: the resource is there but the write needs its ETag (If-Match).
        if not (200 <= reached.status_code < 300 or reached.status_code == 412):
            failed.append(f"{target.name} {label} → {name}: {reached.status_code} {reached.text}")
    return failed


@ONE_SYSTEM
def test_what_a_post_created_is_reached_through_its_documents_links(souk, customer, tmp_path):
    gateway = _configured(
        Target(
            "gateway",
            _document(souk.gateway_url, expected=GATEWAY_OPERATIONS),
            _over_http(souk.gateway_url),
            customer,
        )
    )
    product = httpx.get(
        f"{souk.gateway_url}/api/catalog/products", params={"page_size": 1}, timeout=10
    ).json()["items"][0]
    failed = _follow_links(
        gateway,
        "POST /api/orders",
        {"Idempotency-Key": str(uuid.uuid4())},
        body={
            "items": [{"product_id": product["id"], "quantity": 1}],
            "payment": {"card_token": "tok_ok"},
        },
        media_type="application/json",
    )
    failed += _follow_links(
        gateway,
        "PUT /api/mobile/cart/items/{product_id}",
        {},
        path_parameters={"product_id": product["id"]},
        body={"qty": 1},
        media_type="application/json",
    )
    with _own_catalog(tmp_path) as client:
        catalog = _configured(
            Target(
                "catalog",
                schemathesis.openapi.from_dict(client.get("/openapi.json").json()),
                _in_process(client),
                {"Authorization": "Bearer souk-cli;catalog:write"},
            )
        )
        model = client.get("/products", params={"page_size": 1}).json()["items"][0]
        failed += _follow_links(
            catalog,
            "POST /products",
            {},
            body={
                "sku": f"FUZZ-{uuid.uuid4().hex[:8].upper()}",
                "name": "Fuzzed lantern",
                "category": model["category"],
                "price": model["price"],
            },
            media_type="application/json",
        )
    assert not failed, "\n\n".join(failed)
