"""`souk resilience`: every instance's breakers, bulkheads, retries and shed requests, read
from its ``/metrics`` (the ``souk_*`` series the chassis publishes)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import httpx
from rich.table import Table
from rich.text import Text

from chassis.resilience.metrics import DependencyReading, read_resilience

if TYPE_CHECKING:
    from collections.abc import Sequence

    from souk.state import InstanceRecord

_BREAKER_STYLE: Final = {"closed": "green", "half-open": "yellow", "open": "red"}


@dataclass
class InstanceResilience:
    """One instance's dependencies, and the requests it shed per lane."""

    instance: str
    reachable: bool = True
    dependencies: dict[str, DependencyReading] = field(default_factory=dict)
    shed: dict[str, int] = field(default_factory=dict)


def parse(instance: str, metrics_text: str) -> InstanceResilience:
    """The resilience series of one instance's Prometheus text."""
    reading = read_resilience(metrics_text)
    shed = {name: int(lane.shed) for name, lane in reading.lanes.items()}
    return InstanceResilience(instance, dependencies=reading.dependencies, shed=shed)


async def scrape(records: Sequence[InstanceRecord]) -> list[InstanceResilience]:
    """Every instance's resilience now; an instance that does not answer is marked so."""
    async with httpx.AsyncClient(timeout=2) as client:

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
                f"{state.refused:.0f}",
                f"{state.in_flight:.0f}/{state.limit:.0f}",
                f"{state.bulkhead_rejected:.0f}",
                f"{state.retries:.0f}",
                shed,
            )
    return table
