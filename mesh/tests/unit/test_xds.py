"""The state-of-the-world protocol as the control plane speaks it, with a scripted sidecar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from mesh.authority import CertificateAuthority
from mesh.policy import Policy
from mesh.resources import CLUSTER, ENDPOINT, LISTENER
from mesh.traffic import TrafficSettings
from mesh.xds import ADS_TYPES, ControlPlane


def _node(node_id: str, service: str, inbound: int, outbound: dict[str, int]) -> base_pb2.Node:
    metadata = struct_pb2.Struct()
    metadata.update(
        {
            "service": service,
            "inbound_port": inbound,
            "app": "unix:/tmp/x.sock",
            "outbound": outbound,
        }
    )
    return base_pb2.Node(id=node_id, metadata=metadata)


class ScriptedSidecar:
    def __init__(self, control_plane: ControlPlane, node: base_pb2.Node) -> None:
        self._requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self._node = node
        self._first = True
        self._responses: asyncio.Queue[discovery_pb2.DiscoveryResponse] = asyncio.Queue()
        self._pump = asyncio.create_task(self._receive(control_plane))

    async def _receive(self, control_plane: ControlPlane) -> None:
        async for response in control_plane.serve_stream(self._iterate(), ADS_TYPES):
            self._responses.put_nowait(response)

    async def _iterate(self) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    def ask(
        self,
        type_url: str,
        *,
        names: list[str] | None = None,
        ack: discovery_pb2.DiscoveryResponse | None = None,
    ) -> None:
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names or [])
        if self._first:
            request.node.CopyFrom(self._node)
            self._first = False
        if ack is not None:
            request.version_info = ack.version_info
            request.response_nonce = ack.nonce
        self._requests.put_nowait(request)

    async def next(self, within: float = 2.0) -> discovery_pb2.DiscoveryResponse:
        async with asyncio.timeout(within):
            return await self._responses.get()

    async def close(self) -> None:
        self._requests.put_nowait(None)
        await self._pump


@pytest.fixture
def control_plane() -> ControlPlane:
    policy = Policy.parse({"catalog": {"allow": [{"from": ["orders"]}]}})
    return ControlPlane(CertificateAuthority.create(), policy, TrafficSettings())


async def test_a_first_request_is_answered_an_ack_is_not_and_a_change_is_pushed(
    control_plane: ControlPlane,
) -> None:
    orders = ScriptedSidecar(control_plane, _node("orders-1", "orders", 7001, {"catalog": 7101}))
    orders.ask(CLUSTER)
    clusters = await orders.next()
    assert clusters.type_url == CLUSTER
    assert len(clusters.resources) == 2  # local-app and catalog
    orders.ask(ENDPOINT, names=["catalog"], ack=None)
    endpoints = await orders.next()
    assert endpoints.type_url == ENDPOINT
    orders.ask(CLUSTER, ack=clusters)  # ACK: nothing new to say
    orders.ask(ENDPOINT, names=["catalog"], ack=endpoints)
    with pytest.raises(TimeoutError):
        await orders.next(within=0.3)

    # A catalog instance connects: orders' sidecar is pushed the new endpoint, and only that.
    catalog = ScriptedSidecar(control_plane, _node("catalog-1", "catalog", 7002, {}))
    catalog.ask(LISTENER)
    await catalog.next()
    pushed = await orders.next()
    assert pushed.type_url == ENDPOINT
    assert pushed.version_info != endpoints.version_info
    assert b"catalog-1" in pushed.resources[0].value

    # It goes away: the endpoint is withdrawn.
    await catalog.close()
    withdrawn = await orders.next()
    assert withdrawn.type_url == ENDPOINT
    assert b"catalog-1" not in withdrawn.resources[0].value
    await orders.close()


async def test_a_stale_nonce_is_ignored_and_a_nack_is_not_answered_again(
    control_plane: ControlPlane,
) -> None:
    orders = ScriptedSidecar(control_plane, _node("orders-1", "orders", 7001, {}))
    orders.ask(LISTENER)
    first = await orders.next()
    nack = discovery_pb2.DiscoveryRequest(
        type_url=LISTENER, version_info="", response_nonce=first.nonce
    )
    nack.error_detail.message = "bad listener"
    orders._requests.put_nowait(nack)
    stale = discovery_pb2.DiscoveryRequest(type_url=LISTENER, response_nonce="not-a-nonce")
    orders._requests.put_nowait(stale)
    with pytest.raises(TimeoutError):
        await orders.next(within=0.3)
    await orders.close()


async def test_certificates_past_half_life_are_reissued_and_the_others_kept(
    control_plane: ControlPlane,
) -> None:
    orders = ScriptedSidecar(control_plane, _node("orders-1", "orders", 7001, {}))
    orders.ask(LISTENER)
    await orders.next()
    first = control_plane.svid("orders-1")
    assert first is not None
    assert await control_plane.rotate_due() == 0
    control_plane._clock = lambda: first.not_after
    assert await control_plane.rotate_due() == 1
    renewed = control_plane.svid("orders-1")
    assert renewed is not None
    assert renewed.certificate_pem != first.certificate_pem
    await orders.close()
