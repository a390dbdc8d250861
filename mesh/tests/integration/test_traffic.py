"""Traffic through real sidecars: ejection, retry budget, breakers, certificate rotation under
load, a control plane that goes away and comes back.

The certificates here live 4 seconds, so they are rotated (at half-life) every 2 seconds
throughout the module, under every test's traffic.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from mesh.policy import Policy
from mesh.settings import MeshSettings
from mesh.testing import MeshUnderTest, RunningSidecar, free_port, mesh_under_test, wait_until_ready
from mesh.traffic import TrafficSettings

from .apps import HttpApp

pytestmark = pytest.mark.asyncio(loop_scope="module")

SVID_LIFETIME = 4.0

SETTINGS = MeshSettings(
    policy=Policy.parse(
        {name: {"allow": [{"from": ["bff-web"]}]} for name in ("catalog", "billing", "orders")}
    ),
    traffic=TrafficSettings.parse(
        {
            "default": {
                "health_check_interval": 0.5,
                "outlier_interval": 0.5,
                "base_ejection_time": 2.0,
            },
            "catalog": {"lb_policy": "round_robin", "consecutive_5xx": 3},
            "orders": {"max_connections": 1, "max_pending_requests": 1, "max_requests": 1},
        }
    ),
    svid_lifetime=dt.timedelta(seconds=SVID_LIFETIME),
)


@dataclass
class Shop:
    mesh: MeshUnderTest
    caller: RunningSidecar
    apps: dict[str, HttpApp]

    def url(self, callee: str, path: str) -> str:
        return f"{self.caller.outbound_url(callee)}{path}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(mesh_dir: Path) -> AsyncIterator[Shop]:
    apps = {
        name: HttpApp(mesh_dir / f"{name}.sock")
        for name in ("catalog-1", "catalog-2", "billing-1", "orders-1", "bff-web-1")
    }
    for app in apps.values():
        await app.start()
    async with mesh_under_test(mesh_dir, SETTINGS) as mesh:
        callees = [
            mesh.start_sidecar(name, name.rsplit("-", 1)[0], app.address)
            for name, app in apps.items()
            if not name.startswith("bff-web")
        ]
        caller = mesh.start_sidecar(
            "bff-web-1",
            "bff-web",
            apps["bff-web-1"].address,
            outbound={name: free_port() for name in ("catalog", "billing", "orders")},
        )
        await asyncio.gather(
            *(wait_until_ready(c, listeners=1) for c in callees),
            wait_until_ready(caller, listeners=4),
        )
        shop = Shop(mesh, caller, apps)
        await _until_all_healthy(shop)
        yield shop
    for app in apps.values():
        await app.stop()


async def _endpoints(shop: Shop, cluster: str) -> dict[str, str]:
    """host:port -> health flags, as the caller's sidecar sees them."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{shop.caller.admin}/clusters?format=json") as answer,
    ):
        body = json.loads(await answer.text())
    for status in body.get("cluster_statuses", []):
        if status["name"] == cluster:
            return {
                f"{h['address']['socket_address']['port_value']}": json.dumps(h["health_status"])
                for h in status.get("host_statuses", [])
            }
    return {}


def _serving(flags: str) -> bool:
    """Whether an endpoint takes traffic: neither failed a check, nor ejected, nor pending."""
    return "HEALTHY" in flags and "failed" not in flags and "pending" not in flags


async def _until_all_healthy(shop: Shop) -> None:
    for _ in range(100):
        healthy = [
            all(_serving(flags) for flags in (await _endpoints(shop, name)).values())
            and await _endpoints(shop, name)
            for name in ("catalog", "billing", "orders")
        ]
        if all(healthy):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the callees never became healthy")


async def _offer(
    url: str, *, rate: float, seconds: float, failures: list[str] | None = None
) -> list[int]:
    """Open loop: one request every 1/rate seconds whatever the answers; their statuses.
    ``failures``, when given, collects what each non-200 answer said (Envoy names the reason:
    no healthy upstream, connection timeout, TLS error), so a failed assertion explains itself."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one() -> int:
            try:
                async with session.get(url) as answer:
                    body = await answer.read()
                    if answer.status != 200 and failures is not None:
                        failures.append(f"{answer.status} {body[:200]!r}")
                    return answer.status
            except aiohttp.ClientError as error:
                if failures is not None:
                    failures.append(f"0 {error!r}")
                return 0

        tasks = []
        started = time.monotonic()
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one()))
        return list(await asyncio.gather(*tasks))


async def _until_answering(url: str, *, rate: float) -> None:
    """Offer traffic at ``rate`` until one whole second of it is answered 200 (at most 20 s)."""
    for _ in range(20):
        if set(await _offer(url, rate=rate, seconds=1.0)) == {200}:
            return
    raise TimeoutError(f"{url} never answered a second of traffic with only 200s")


async def test_certificates_rotate_every_few_seconds_under_steady_traffic_with_no_failure(
    shop: Shop,
) -> None:
    serials: set[str] = set()

    async def watch_serials() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"{shop.caller.admin}/certs") as answer:
                    body = json.loads(await answer.text())
                for held in body.get("certificates", []):
                    for chain in held.get("cert_chain", []):
                        serials.add(chain["serial_number"])
                await asyncio.sleep(0.2)

    url = shop.url("billing", "/payments")
    # Warm the pair up first: what is measured is rotation under steady traffic, not a cold
    # connection pool. In one CI run on a loaded two-core machine the first 0.9 s of requests
    # got 503s and nothing after (the reason was not captured then; it is printed now).
    await _until_answering(url, rate=50)
    watcher = asyncio.create_task(watch_serials())
    failures: list[str] = []
    statuses = await _offer(url, rate=50, seconds=7, failures=failures)
    watcher.cancel()

    assert statuses.count(200) == len(statuses), sorted(set(failures))
    # The caller's own certificate changed at least twice while the traffic ran.
    assert len(serials) >= 3


async def test_a_replica_answering_500s_is_ejected_and_comes_back_once_it_recovers(
    shop: Shop,
) -> None:
    sick, well = shop.apps["catalog-1"], shop.apps["catalog-2"]
    sick.status = 500
    # POST is not retried on a 5xx: what the callers see is what the replicas answered.
    async with aiohttp.ClientSession() as session:
        for _ in range(12):
            async with session.post(shop.url("catalog", "/products")) as answer:
                await answer.read()
        sick_hits, well_hits = sick.hits, well.hits
        statuses = []
        for _ in range(20):
            async with session.post(shop.url("catalog", "/products")) as answer:
                statuses.append(answer.status)
    # Ejected: everything goes to the well replica.
    assert statuses == [200] * 20
    assert sick.hits == sick_hits
    assert well.hits == well_hits + 20

    sick.status = 200
    await asyncio.sleep(SETTINGS.traffic.for_upstream("catalog").base_ejection_time + 1.5)
    async with aiohttp.ClientSession() as session:
        for _ in range(10):
            async with session.post(shop.url("catalog", "/products")) as answer:
                assert answer.status == 200
    assert sick.hits > sick_hits  # back in the rotation


async def test_an_upstream_failing_every_request_gets_at_most_1_2_times_the_offered_load(
    shop: Shop,
) -> None:
    broken = shop.apps["billing-1"]
    broken.status = 500
    before = broken.hits
    try:
        # GETs are safe to retry on a 5xx: the retry budget is what holds them back.
        statuses = await _offer(shop.url("billing", "/payments/p-1"), rate=100, seconds=3)
    finally:
        broken.status = 200
    offered = len(statuses)
    assert all(status in (500, 503) for status in statuses)
    assert broken.hits - before <= 1.2 * offered


async def test_requests_beyond_the_pending_limit_are_answered_503_at_once(shop: Shop) -> None:
    slow = shop.apps["orders-1"]
    slow.delay = 1.0
    try:
        async with aiohttp.ClientSession() as session:

            async def one() -> tuple[int, float, str]:
                started = time.monotonic()
                async with session.post(shop.url("orders", "/orders")) as answer:
                    await answer.read()
                    return (
                        answer.status,
                        time.monotonic() - started,
                        answer.headers.get("x-envoy-overloaded", ""),
                    )

            answers = await asyncio.gather(*(one() for _ in range(8)))
    finally:
        slow.delay = 0.0
    overflowed = [a for a in answers if a[0] == 503]
    served = [a for a in answers if a[0] == 200]
    # One in flight, one pending: the other six overflow, answered without waiting.
    assert len(served) >= 1
    assert len(overflowed) >= 5
    assert all(elapsed < 0.5 and flag == "true" for _, elapsed, flag in overflowed)


async def test_the_sidecars_keep_serving_while_the_control_plane_is_down_and_it_resumes(
    shop: Shop, mesh_dir: Path
) -> None:
    await shop.mesh.stop_control_plane()
    # Down: the last configuration keeps working.
    statuses = await _offer(shop.url("catalog", "/products"), rate=20, seconds=1)
    assert statuses.count(200) == len(statuses)

    await shop.mesh.restart_control_plane(SETTINGS)
    # Back: a new catalog instance on a new address is pushed to the caller.
    newcomer = HttpApp(mesh_dir / "catalog-3.sock")
    await newcomer.start()
    try:
        third = shop.mesh.start_sidecar("catalog-3", "catalog", newcomer.address)
        await wait_until_ready(third, listeners=1)
        for _ in range(100):
            if str(third.inbound_port) in await _endpoints(shop, "catalog"):
                break
            await asyncio.sleep(0.1)
        assert str(third.inbound_port) in await _endpoints(shop, "catalog")
        await asyncio.sleep(1.5)  # its first health check
        statuses = await _offer(shop.url("catalog", "/products"), rate=30, seconds=1)
        assert statuses.count(200) == len(statuses)
        assert newcomer.hits > 0
    finally:
        shop.mesh.sidecars["catalog-3"].stop()
        await newcomer.stop()
