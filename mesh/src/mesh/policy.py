"""The call policy: which service may call which routes of which other service.

Written once (the ``mesh.policy`` section of souk.yaml, or a file of its own), compiled into
an Envoy RBAC filter on each callee's inbound listener, matched against the caller's SPIFFE
ID from its certificate. Anything no rule allows is refused::

    identity:
      closed: [/internal/]             # nobody, unless a rule names the route itself
      allow:
        - from: [gateway, bff-web]     # every other route
        - from: [souk-cli]
          routes: [/internal/keys/rotate, /internal/revocations]

A route is a path prefix. ``closed`` prefixes stay shut to a rule that allows ``/`` (or any
prefix above them) unless that rule names the closed route (or a prefix inside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

# Every sidecar may probe every other one's readiness: active health checks come from the
# caller's sidecar with the caller's identity, whatever the policy says of other routes.
HEALTH_ROUTES = ("/readyz", "/healthz", "/grpc.health.v1.Health/Check")


class PolicyError(ValueError):
    """The policy names something it cannot mean."""


@dataclass(frozen=True)
class Rule:
    callers: tuple[str, ...]
    routes: tuple[str, ...] = ("/",)

    def opens(self, closed_route: str) -> bool:
        """Whether this rule names ``closed_route`` (or a route inside it) itself."""
        return any(route.startswith(closed_route) for route in self.routes)


@dataclass(frozen=True)
class CalleePolicy:
    closed: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()

    def allows(self, caller: str, path: str) -> bool:
        """The decision Envoy's RBAC filter makes, in Python (for ``souk mesh status``, tests)."""
        if path in HEALTH_ROUTES:
            return True
        for rule in self.rules:
            if caller not in rule.callers:
                continue
            if not any(path.startswith(route) for route in rule.routes):
                continue
            shut = [c for c in self.closed if path.startswith(c) and not rule.opens(c)]
            if not shut:
                return True
        return False


@dataclass(frozen=True)
class Policy:
    callees: Mapping[str, CalleePolicy] = field(default_factory=dict)

    def for_callee(self, service: str) -> CalleePolicy:
        return self.callees.get(service, CalleePolicy())

    def callees_of(self, caller: str) -> list[str]:
        """The services ``caller`` may call at all: its sidecar gets an outbound port for each."""
        return sorted(
            name
            for name, callee in self.callees.items()
            if any(caller in rule.callers for rule in callee.rules)
        )

    @classmethod
    def default(cls) -> Policy:
        """The policy Souk ships: today's call graph, internal routes for their callers only."""
        text = resources.files("mesh").joinpath("default_policy.yaml").read_text()
        return cls.parse(yaml.safe_load(text))

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Policy:
        callees: dict[str, CalleePolicy] = {}
        for callee, section in (raw or {}).items():
            if not isinstance(section, Mapping):
                raise PolicyError(f"policy for {callee!r} must be a mapping")
            unknown = set(section) - {"closed", "allow"}
            if unknown:
                raise PolicyError(f"policy for {callee!r}: unknown keys {sorted(unknown)}")
            closed = _routes(section.get("closed", []), f"{callee}.closed")
            rules = []
            for index, rule in enumerate(section.get("allow", [])):
                where = f"{callee}.allow[{index}]"
                if not isinstance(rule, Mapping) or "from" not in rule:
                    raise PolicyError(f"{where} needs a 'from' list of callers")
                callers = rule["from"]
                if isinstance(callers, str):
                    callers = [callers]
                rules.append(
                    Rule(
                        callers=tuple(str(c) for c in callers),
                        routes=_routes(rule.get("routes", ["/"]), where),
                    )
                )
            callees[str(callee)] = CalleePolicy(closed=closed, rules=tuple(rules))
        return cls(callees)


def _routes(raw: Iterable[Any] | str, where: str) -> tuple[str, ...]:
    routes = [raw] if isinstance(raw, str) else list(raw)
    for route in routes:
        if not isinstance(route, str) or not route.startswith("/"):
            raise PolicyError(f"{where}: a route is a path prefix starting with '/', not {route!r}")
    return tuple(routes)
