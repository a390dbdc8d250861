"""`souk resilience`: every instance's breakers, bulkheads, retries and shed requests, read
from its ``/metrics`` (the ``souk_*`` series the chassis publishes)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import httpx
from rich.table import Table
from rich.text import Text

from souk import instances

if TYPE_CHECKING:
    from collections.abc import Sequence

    from souk.state import InstanceRecord

_SAMPLE: Final = re.compile(r"^(souk_[a-z_]+?)(?:_total)?(?:\{([^}]*)\})?\s+(\S+)$")
_LABEL: Final = re.compile(r'(\w+)="([^"]*)"')
_BREAKER_STATES: Final = {0: "closed", 1: "half-open", 2: "open"}
_BREAKER_STYLE: Final = {"closed": "green", "half-open": "yellow", "open": "red"}


@dataclass
class DependencyState:
    """What one instance knows of one dependency."""

    breaker: str = "closed"
    breaker_rejected: int = 0
    in_flight: int = 0
    limit: int = 0
    bulkhead_rejected: int = 0
    retries: int = 0


@dataclass
class InstanceResilience:
    """One instance's dependencies, and the requests it shed per lane."""

    instance: str
    reachable: bool = True
    dependencies: dict[str, DependencyState] = field(default_factory=dict)
    shed: dict[str, int] = field(default_factory=dict)


def parse(instance: str, metrics_text: str) -> InstanceResilience:
    """The resilience series of one instance's Prometheus text."""
    found = InstanceResilience(instance)
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, raw_labels, raw_value = match.groups()
        labels = dict(_LABEL.findall(raw_labels or ""))
        value = int(float(raw_value))
        if name == "souk_requests_shed" and "lane" in labels:
            found.shed[labels["lane"]] = value
            continue
        dependency = labels.get("dependency")
        if dependency is None:
            continue
        state = found.dependencies.setdefault(dependency, DependencyState())
        match name:
            case "souk_breaker_state":
                state.breaker = _BREAKER_STATES.get(value, str(value))
            case "souk_breaker_rejected":
                state.breaker_rejected = value
            case "souk_bulkhead_in_flight":
                state.in_flight = value
            case "souk_bulkhead_limit":
                state.limit = value
            case "souk_bulkhead_rejected":
                state.bulkhead_rejected = value
            case "souk_retries":
                state.retries = value
    return found


async def scrape(records: Sequence[InstanceRecord]) -> list[InstanceResilience]:
    """Every instance's resilience now; an instance that does not answer is marked so."""
    async with instances.async_client(records, timeout=2) as client:

        async def one(record: InstanceRecord) -> InstanceResilience:
            try:
                response = await client.get(f"{record.url}/metrics")
            except httpx.HTTPError:
                return InstanceResilience(record.instance, reachable=False)
            if response.status_code != 200:
                return InstanceResilience(record.instance, reachable=False)
            return parse(record.instance, response.text)

        return list(await asyncio.gather(*(one(record) for record in records)))


def resilience_table(instances: Sequence[InstanceResilience]) -> Table:
    """One row per instance and dependency: breaker, bulkhead, retries; and shed requests."""
    table = Table(header_style="bold")
    for column in ("instance", "dependency", "breaker"):
        table.add_column(column)
    for column in ("refused", "in flight", "bulkhead full", "retries", "shed r/w"):
        table.add_column(column, justify="right")
    for found in instances:
        shed = f"{found.shed.get('read', 0)}/{found.shed.get('write', 0)}"
        if not found.reachable:
            table.add_row(found.instance, "-", Text("unreachable", style="red"), *["-"] * 5)
            continue
        if not found.dependencies:
            table.add_row(found.instance, "-", "-", "-", "-", "-", "-", shed)
        for name, state in sorted(found.dependencies.items()):
            table.add_row(
                found.instance,
                name,
                Text(state.breaker, style=_BREAKER_STYLE.get(state.breaker, "")),
                str(state.breaker_rejected),
                f"{state.in_flight}/{state.limit}",
                str(state.bulkhead_rejected),
                str(state.retries),
                shed,
            )
    return table
