"""The control plane of a mesh on several hosts: xDS over mutual TLS on TCP, each host's
sidecars admitted with their host's credential for that host's own instances only.

Hosts here are two loopback addresses (127.0.0.1 "b", 127.0.0.2 "c"); the credentials are
made by ``mesh.credentials`` as `souk secrets` makes them. A real Envoy sidecar boots through
the TLS channel; gRPC clients with other certificates (or none) show what is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import json_format, struct_pb2

from mesh import credentials
from mesh import server as server_module
from mesh.authority import CertificateAuthority, control_plane_id, host_id, service_id
from mesh.policy import Policy
from mesh.registry import Sidecar
from mesh.resources import CLUSTER, SECRET
from mesh.server import build, start
from mesh.settings import HostPlacement, MeshSettings
from mesh.sidecar import ControlPlaneTls, SidecarLaunch
from mesh.testing import RunningSidecar, free_port, wait_until_ready
from mesh.traffic import TrafficSettings
from mesh.xds import ControlPlane

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTS = {
    "b": HostPlacement("127.0.0.1", {"catalog-1": "catalog", "orders-1": "orders"}),
    "c": HostPlacement("127.0.0.2", {"billing-1": "billing"}),
}


@dataclass
class TlsMesh:
    directory: Path
    control_plane: ControlPlane
    listen: str

    def credentials(self, host: str) -> tuple[bytes, bytes]:
        credential = credentials.HostCredential.of(self.directory, host)
        return credential.key.read_bytes(), credential.certificate.read_bytes()

    def root(self) -> bytes:
        return (credentials.ca_dir(self.directory) / "root.pem").read_bytes()

    def channel(self, host: str | None, *, root: bytes | None = None) -> grpc.aio.Channel:
        key, certificate = self.credentials(host) if host else (None, None)
        tls = grpc.ssl_channel_credentials(root or self.root(), key, certificate)
        # The server's certificate names 127.0.0.1 (an IP SAN) beside its SPIFFE ID.
        return grpc.aio.secure_channel(self.listen, tls)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(mesh_dir: Path) -> AsyncIterator[TlsMesh]:
    made = credentials.ensure(mesh_dir, list(HOSTS))
    settings = MeshSettings(policy=Policy.default(), traffic=TrafficSettings(), hosts=HOSTS)
    control_plane = build(settings, credentials.ca_dir(mesh_dir))
    listen = f"127.0.0.1:{free_port()}"
    server = await start(control_plane, listen)
    assert len(made) == 2 + 2 * len(HOSTS)
    try:
        yield TlsMesh(mesh_dir, control_plane, listen)
    finally:
        await server.stop(grace=None)


def _node(node_id: str, service: str, address: str) -> base_pb2.Node:
    metadata = struct_pb2.Struct()
    sidecar = Sidecar(node_id, service, free_port(), "127.0.0.1:1", inbound_host=address)
    json_format.ParseDict(sidecar.metadata(), metadata)
    return base_pb2.Node(id=node_id, cluster=service, metadata=metadata)


async def _first_answer(
    channel: grpc.aio.Channel, node: base_pb2.Node, type_url: str = CLUSTER
) -> discovery_pb2.DiscoveryResponse:
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    call = stub.StreamAggregatedResources()
    try:
        await call.write(discovery_pb2.DiscoveryRequest(node=node, type_url=type_url))
        async with asyncio.timeout(10):
            answer = await call.read()
        assert isinstance(answer, discovery_pb2.DiscoveryResponse), answer
        return answer
    finally:
        call.cancel()


async def test_a_host_credential_gets_its_own_instances_configuration(mesh: TlsMesh) -> None:
    async with mesh.channel("c") as channel:
        answer = await _first_answer(channel, _node("billing-1", "billing", "127.0.0.2"))
    assert answer.type_url == CLUSTER
    assert answer.resources  # the local app's cluster at least


async def test_a_host_may_not_claim_another_hosts_instance_or_address(mesh: TlsMesh) -> None:
    claims = [
        ("billing-1", "billing", "127.0.0.1"),  # billing runs on c, not b
        ("catalog-1", "billing", "127.0.0.1"),  # b's instance, claimed as another service
        ("catalog-9", "catalog", "127.0.0.1"),  # an instance the topology does not have
    ]
    for node_id, service, address in claims:
        async with mesh.channel("b") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _first_answer(channel, _node(node_id, service, address), SECRET)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, node_id
    # b's own instance announced at c's address would draw c's callers' traffic: refused too.
    async with mesh.channel("b") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _first_answer(channel, _node("catalog-1", "catalog", "127.0.0.2"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not host b's address" in (refused.value.details() or "")
    # Refused before it joined: no endpoint was pushed, no identity issued.
    assert not [s for s in mesh.control_plane.registry.sidecars() if s.inbound_host == "127.0.0.1"]
    assert mesh.control_plane.svid("catalog-9") is None


async def test_no_certificate_or_one_from_another_root_is_not_let_in(mesh: TlsMesh) -> None:
    async with mesh.channel(None) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await _first_answer(channel, _node("billing-1", "billing", "127.0.0.2"))
    assert anonymous.value.code() == grpc.StatusCode.UNAVAILABLE

    stranger = CertificateAuthority.create()
    forged = stranger.issue(host_id("c"), credentials.HOST_CREDENTIAL_LIFETIME)
    tls = grpc.ssl_channel_credentials(mesh.root(), forged.private_key_pem, forged.certificate_pem)
    async with grpc.aio.secure_channel(mesh.listen, tls) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as foreign:
            await _first_answer(channel, _node("billing-1", "billing", "127.0.0.2"))
    assert foreign.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_service_svid_is_no_host_credential(mesh: TlsMesh) -> None:
    # An instance's own certificate comes from the same root but names a service: it does not
    # open the control plane (else any workload could ask for any other's identity).
    svid = mesh.control_plane.authority.issue(
        service_id("billing"), credentials.HOST_CREDENTIAL_LIFETIME
    )
    tls = grpc.ssl_channel_credentials(mesh.root(), svid.private_key_pem, svid.certificate_pem)
    async with grpc.aio.secure_channel(mesh.listen, tls) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _first_answer(channel, _node("billing-1", "billing", "127.0.0.2"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_real_sidecar_boots_over_the_tls_channel_at_its_hosts_address(
    mesh: TlsMesh,
) -> None:
    credential = credentials.HostCredential.of(mesh.directory, "b")
    sidecar = Sidecar(
        node_id="orders-1",
        service="orders",
        inbound_port=free_port(),
        app_address=f"127.0.0.1:{free_port()}",
        outbound={"catalog": free_port()},
        inbound_host="127.0.0.1",
    )
    launch = SidecarLaunch(
        sidecar,
        admin_port=free_port(),
        control_plane=mesh.listen,
        control_plane_tls=ControlPlaneTls(
            certificate=str(credential.certificate),
            key=str(credential.key),
            trust_bundle=str(credentials.ca_dir(mesh.directory) / "root.pem"),
            server_id=control_plane_id(),
        ),
    )
    bootstrap = launch.write_bootstrap(mesh.directory)
    assert "credential.key" in json.dumps(launch.bootstrap())  # a file path, never the key
    log_path = mesh.directory / "orders-1.envoy.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - Envoy runs beside the test
            launch.command(bootstrap), stdout=log, stderr=subprocess.STDOUT
        )
    running = RunningSidecar(launch, process, log_path)
    try:
        # Its inbound and outbound listeners came over ADS, its certificate over SDS (the
        # inbound listener does not warm without it), both on the TLS channel.
        await wait_until_ready(running, listeners=2, within=30)
        registered = mesh.control_plane.registry.get("orders-1")
        assert registered is not None
        assert registered.inbound_host == "127.0.0.1"
        svid = mesh.control_plane.svid("orders-1")
        assert svid is not None
        assert svid.spiffe_id == service_id("orders")
    finally:
        running.stop()


async def _served_certificate(mesh: TlsMesh, listen: str) -> x509.Certificate:
    context = ssl.create_default_context(cadata=mesh.root().decode())
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    credential = credentials.HostCredential.of(mesh.directory, "b")
    context.load_cert_chain(credential.certificate, credential.key)
    host, _, port = listen.rpartition(":")
    async with asyncio.timeout(5):
        _, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der)


async def test_the_servers_certificate_names_the_control_plane_and_is_renewed_at_half_life(
    mesh: TlsMesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "SERVER_CERTIFICATE_LIFETIME", dt.timedelta(seconds=2))
    listen = f"127.0.0.1:{free_port()}"
    server = await start(mesh.control_plane, listen)
    try:
        first = await _served_certificate(mesh, listen)
        names = first.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.UniformResourceIdentifier) == [control_plane_id()]
        assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        await asyncio.sleep(1.2)  # past half of its 2 s
        renewed = await _served_certificate(mesh, listen)
    finally:
        await server.stop(grace=None)
    assert renewed.serial_number != first.serial_number
    assert renewed.not_valid_after_utc > first.not_valid_after_utc
