"""Schemathesis, fed the gateway's published OpenAPI, finds no request that makes Souk fail."""

from __future__ import annotations

import uuid

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from souk.testing import customer_token

from .conftest import PASSWORD


@pytest.fixture
def public_api(souk):
    """The gateway's document, as a client reads it."""
    return schemathesis.openapi.from_url(f"{souk.gateway_url}/openapi.json")


@pytest.fixture
def bearer(souk):
    """A customer's token: the guarded routes act for a signed-in customer."""
    email = f"fuzzer-{uuid.uuid4().hex[:12]}@example.com"
    return {"Authorization": f"Bearer {customer_token(souk.gateway_url, email, PASSWORD)}"}


def test_no_read_through_the_gateway_answers_with_a_server_error(public_api, souk, bearer):
    # Every operation is tried (schemathesis's pytest loader does not run on pytest 9 yet),
    # and every one that failed is reported, not only the first.
    failed: list[str] = []
    tried: set[str] = set()
    # Reads only: the system is shared with the rest of the suite.
    for result in public_api.include(method="GET").get_all_operations():
        operation = result.ok()
        tried.add(operation.label)
        # Only operations the document says are guarded get the token, as a client would.
        headers = bearer if operation.definition.raw.get("security") else None
        try:
            _fuzz(operation, souk.gateway_url, headers)
        except (AssertionError, BaseExceptionGroup) as failure:
            failed.append(f"{operation.label}: {_described(failure)}")
    # An empty or partial document would pass vacuously.
    assert {
        "GET /api/catalog/products",
        "GET /api/orders/{order_id}",
        "GET /api/notifications",
        "GET /.well-known/jwks.json",
    } <= tried, tried
    assert not failed, "\n\n".join(failed)


def _fuzz(operation, base_url, headers):
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @hypothesis.settings(
        max_examples=20,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases)
    def no_server_error(case):
        case.call_and_validate(
            base_url=base_url, headers=headers, checks=[not_a_server_error], timeout=10
        )

    no_server_error()


def _described(failure):
    if isinstance(failure, BaseExceptionGroup):
        return "\n".join(_described(inner) for inner in failure.exceptions)
    return str(failure)
