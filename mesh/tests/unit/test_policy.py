from __future__ import annotations

import pytest

from mesh.policy import Policy, PolicyError

POLICY = Policy.parse(
    {
        "identity": {
            "closed": ["/internal/"],
            "allow": [
                {"from": ["gateway", "orders"]},
                {"from": ["orders"], "routes": ["/internal/revocations"]},
                {"from": ["souk-cli"], "routes": ["/internal/keys/rotate"]},
            ],
        }
    }
)


@pytest.mark.parametrize(
    ("caller", "path", "allowed"),
    [
        ("gateway", "/oauth/token", True),
        ("gateway", "/internal/revocations", False),
        ("orders", "/internal/revocations", True),
        ("orders", "/internal/keys/rotate", False),
        ("souk-cli", "/internal/keys/rotate", True),
        ("souk-cli", "/oauth/token", False),
        ("billing", "/oauth/token", False),
        ("billing", "/readyz", True),
    ],
)
def test_a_closed_route_opens_only_to_a_rule_that_names_it(
    caller: str, path: str, allowed: bool
) -> None:
    assert POLICY.for_callee("identity").allows(caller, path) is allowed


def test_a_service_the_policy_does_not_name_takes_no_calls() -> None:
    assert not POLICY.for_callee("catalog").allows("gateway", "/products")


def test_the_callees_of_a_caller_are_the_services_that_allow_it() -> None:
    assert POLICY.callees_of("orders") == ["identity"]
    assert POLICY.callees_of("payment-primary") == []


@pytest.mark.parametrize(
    "raw",
    [
        {"identity": {"allow": [{"routes": ["/"]}]}},
        {"identity": {"allow": [{"from": ["gateway"], "routes": ["oauth"]}]}},
        {"identity": {"deny": []}},
        {"identity": ["gateway"]},
    ],
)
def test_a_policy_that_cannot_mean_anything_is_refused(raw: dict) -> None:
    with pytest.raises(PolicyError):
        Policy.parse(raw)


def test_the_shipped_policy_keeps_the_internal_routes_for_their_real_callers() -> None:
    shipped = Policy.default()
    assert shipped.for_callee("identity").allows("souk-cli", "/internal/keys/rotate")
    assert not shipped.for_callee("identity").allows("gateway", "/internal/keys/rotate")
    assert shipped.for_callee("identity").allows("catalog", "/internal/revocations")
    assert shipped.for_callee("order-history").allows("souk-cli", "/internal/rebuild")
    assert not shipped.for_callee("order-history").allows("gateway", "/internal/rebuild")
    assert not shipped.for_callee("payment-primary").allows("billing", "/v1/simulation/latency")
    assert shipped.for_callee("payment-primary").allows("billing", "/v1/authorizations")
    assert not shipped.for_callee("billing").allows("gateway", "/payments")
