"""Two (and more) real Envoy sidecars driven by the control plane, real certificates.

orders-1 calls catalog (HTTP) and inventory (gRPC) through its sidecar; the callee sidecars
hold the shipped policy. Other callers talk to a callee's inbound port directly with a
certificate of the test's choosing, to see what the sidecar lets through.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest
import pytest_asyncio

from mesh.authority import CertificateAuthority, service_id
from mesh.policy import Policy
from mesh.settings import MeshSettings
from mesh.testing import MeshUnderTest, RunningSidecar, free_port, mesh_under_test, wait_until_ready
from mesh.traffic import TrafficSettings

from .apps import HttpApp, call_wait, grpc_app
from .tls import client_context, get_status

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Pair:
    mesh: MeshUnderTest
    caller: RunningSidecar
    callees: dict[str, RunningSidecar]
    app: HttpApp

    def issue(self, service: str, lifetime: float = 600) -> ssl.SSLContext:
        svid = self.mesh.control_plane.authority.issue(
            service_id(service), dt.timedelta(seconds=lifetime)
        )
        return client_context(self.mesh.control_plane.authority.bundle_pem(), svid)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(mesh_dir: Path) -> AsyncIterator[Pair]:
    settings = MeshSettings(policy=Policy.default(), traffic=TrafficSettings())
    app = HttpApp(mesh_dir / "app.sock")
    await app.start()
    async with (
        grpc_app(mesh_dir / "grpc.sock") as grpc_address,
        mesh_under_test(mesh_dir, settings) as mesh,
    ):
        callees = {
            name: mesh.start_sidecar(f"{name}-1", name, app.address)
            for name in ("catalog", "identity", "orders", "order-history", "payment-primary")
        }
        callees["inventory"] = mesh.start_sidecar(
            "inventory-1", "inventory", grpc_address, grpc_app=True
        )
        caller = mesh.start_sidecar(
            "billing-1", "billing", app.address, outbound={"payment-primary": free_port()}
        )
        orders_caller = mesh.start_sidecar(
            "bff-web-1",
            "bff-web",
            app.address,
            outbound={"catalog": free_port(), "inventory": free_port()},
        )
        # The gateway has no business with inventory: its sidecar may try, the callee refuses.
        intruder = mesh.start_sidecar(
            "gateway-1", "gateway", app.address, outbound={"inventory": free_port()}
        )
        await asyncio.gather(
            *(wait_until_ready(s, listeners=1) for s in callees.values()),
            wait_until_ready(intruder, listeners=2),
            wait_until_ready(caller, listeners=2),
            wait_until_ready(orders_caller, listeners=3),
        )
        callees["bff-web"] = orders_caller
        callees["gateway"] = intruder
        yield Pair(mesh, caller, callees, app)
    await app.stop()


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), await answer.text()


async def _until_healthy(url: str) -> None:
    """A new endpoint passes its first active health check within a second or two."""
    for _ in range(100):
        status, _, _ = await _get(url)
        if status != 503:
            return
        await asyncio.sleep(0.1)


async def test_a_call_goes_app_to_sidecar_to_sidecar_to_app_and_the_callee_learns_who_called(
    pair: Pair,
) -> None:
    bff = pair.callees["bff-web"]
    url = f"{bff.outbound_url('catalog')}/products?page=2"
    await _until_healthy(url)
    hits_before = pair.app.hits

    status, _, body = await _get(url)

    assert status == 200
    assert '"/products"' in body
    assert pair.app.hits == hits_before + 1
    # The callee's sidecar verified the caller's certificate and says whose it is.
    assert f"URI={service_id('bff-web')}" in pair.app.callers[-1]


async def test_grpc_goes_through_the_mesh_over_http2_and_keeps_its_deadline(pair: Pair) -> None:
    bff = pair.callees["bff-web"]
    target = f"127.0.0.1:{bff.launch.sidecar.outbound['inventory']}"
    for _ in range(50):
        try:
            seen = await call_wait(target, 0, deadline=2.0)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    # The server saw the caller's deadline (minus the hops), not the sidecar's route timeout.
    assert 1.0 < seen <= 2.0

    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call_wait(target, 3.0, deadline=0.5)
    assert refused.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.0


async def test_a_caller_the_policy_does_not_name_gets_403_problem_and_grpc_permission_denied(
    pair: Pair,
) -> None:
    # billing may call payment-primary only: its sidecar has no way to the catalog at all, so
    # the test calls catalog's inbound port with billing's certificate.
    status = await get_status(
        pair.callees["catalog"].inbound_port, "/products", pair.issue("billing")
    )
    assert status == 403

    # gRPC: the gateway's call to inventory, through its own sidecar, is PERMISSION_DENIED
    # (once the inventory endpoint has passed its first health check).
    target = f"127.0.0.1:{pair.callees['gateway'].launch.sidecar.outbound['inventory']}"
    code = None
    for _ in range(50):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call_wait(target, 0, deadline=2.0)
        code = refused.value.code()
        if code is not grpc.StatusCode.UNAVAILABLE:
            break
        await asyncio.sleep(0.1)
    assert code is grpc.StatusCode.PERMISSION_DENIED


async def test_the_refusal_is_a_problem_document(pair: Pair) -> None:
    bff = pair.callees["bff-web"]
    # bff-web may call catalog, but not its internal routes.
    status, content_type, body = await _get(f"{bff.outbound_url('catalog')}/internal/dead-letters")
    assert status == 403
    assert content_type == "application/problem+json"
    assert '"status":403' in body


async def test_a_plaintext_client_is_refused(pair: Pair) -> None:
    with pytest.raises((OSError, ssl.SSLError)):
        await get_status(pair.callees["catalog"].inbound_port, "/products", None)


async def test_a_client_without_a_certificate_is_refused(pair: Pair) -> None:
    context = client_context(pair.mesh.control_plane.authority.bundle_pem(), None)
    with pytest.raises((OSError, ssl.SSLError)):
        await get_status(pair.callees["catalog"].inbound_port, "/products", context)


async def test_a_certificate_from_another_ca_is_refused(pair: Pair) -> None:
    stranger = CertificateAuthority.create()
    svid = stranger.issue(service_id("bff-web"), dt.timedelta(minutes=5))
    # The client trusts the mesh's root (it is not the client that refuses here).
    context = client_context(pair.mesh.control_plane.authority.bundle_pem(), svid)
    with pytest.raises((OSError, ssl.SSLError)):
        await get_status(pair.callees["catalog"].inbound_port, "/products", context)


async def test_an_expired_certificate_is_refused(pair: Pair) -> None:
    authority = pair.mesh.control_plane.authority
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    svid = authority.issue(service_id("bff-web"), dt.timedelta(hours=1), now=long_ago)
    context = client_context(authority.bundle_pem(), svid)
    with pytest.raises((OSError, ssl.SSLError)):
        await get_status(pair.callees["catalog"].inbound_port, "/products", context)
    # The same caller with a valid certificate gets in: the date was the only thing wrong.
    assert (
        await get_status(pair.callees["catalog"].inbound_port, "/products", pair.issue("bff-web"))
        == 200
    )


# Each internal route: (callee, route, method, a caller the policy refuses, its real caller).
INTERNAL_ROUTES = [
    ("identity", "/internal/keys/rotate", "POST", "gateway", "souk-cli"),
    ("identity", "/internal/revocations", "GET", "payment-primary", "catalog"),
    ("orders", "/internal/dead-letters", "GET", "gateway", "souk-cli"),
    ("order-history", "/internal/rebuild", "POST", "gateway", "souk-cli"),
    ("payment-primary", "/v1/simulation", "PUT", "billing", "souk-cli"),
]


@pytest.mark.parametrize("case", INTERNAL_ROUTES, ids=[f"{c}{r}" for c, r, *_ in INTERNAL_ROUTES])
async def test_an_internal_route_answers_only_its_real_caller(
    pair: Pair, case: tuple[str, str, str, str, str]
) -> None:
    callee, route, method, refused, allowed = case
    port = pair.callees[callee].inbound_port
    assert await get_status(port, route, pair.issue(refused), method=method) == 403
    assert await get_status(port, route, pair.issue(allowed), method=method) == 200


async def test_a_refused_caller_still_reaches_the_routes_the_policy_gives_it(pair: Pair) -> None:
    # Exactly the denied routes are denied: gateway may call orders' public API.
    port = pair.callees["orders"].inbound_port
    assert await get_status(port, "/orders/abc", pair.issue("gateway")) == 200
    assert await get_status(port, "/internal/dead-letters", pair.issue("gateway")) == 403
