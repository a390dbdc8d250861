"""The xDS server: ADS (listeners, routes, clusters, endpoints) and SDS (certificates) over
grpc.aio, in the state-of-the-world protocol.

Each stream keeps, per resource type, what the sidecar subscribed to and the version and
nonce it was last sent. A request whose nonce is the last one sent is an ACK (or a NACK,
logged) and asks for nothing; a first request, or one that changes the names subscribed,
is answered at once; and whenever the mesh changes every subscribed type whose content
changed is pushed again. Versions are hashes of the content, so a sidecar that reconnects
to a restarted control plane and is sent the same resources changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.message import Message

from mesh.authority import CertificateAuthority, Svid, host_id, service_id, spiffe_id_of
from mesh.policy import Policy
from mesh.registry import Registry, Sidecar
from mesh.resources import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    MeshView,
    bundle_secret,
    resources_for,
    svid_secret,
)
from mesh.settings import HostPlacement
from mesh.traffic import TrafficSettings

log = logging.getLogger("mesh.xds")

ADS_TYPES = frozenset({LISTENER, ROUTE, CLUSTER, ENDPOINT})
SDS_TYPES = frozenset({SECRET})
# Listeners and clusters are subscribed to by wildcard (no names): the sidecar gets them all.
WILDCARD_TYPES = frozenset({LISTENER, CLUSTER})


@dataclass
class _Subscription:
    names: frozenset[str] = frozenset()
    version: str = ""
    nonce: str = ""


@dataclass
class _Stream:
    allowed: frozenset[str]
    # The SPIFFE ID of the peer's TLS client certificate (several hosts); None on the socket.
    peer: str | None = None
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    node_id: str | None = None
    refused: str | None = None


class RefusedError(Exception):
    """A sidecar asked for an instance its host credential does not cover."""


class ControlPlane:
    """The registry, the CA, the policy and the traffic settings, served as xDS."""

    def __init__(
        self,
        authority: CertificateAuthority,
        policy: Policy,
        traffic: TrafficSettings,
        *,
        svid_lifetime: dt.timedelta = dt.timedelta(hours=1),
        trust_domain: str = "souk.local",
        hosts: Mapping[str, HostPlacement] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.authority = authority
        self.policy = policy
        self.traffic = traffic
        self.svid_lifetime = svid_lifetime
        self.trust_domain = trust_domain
        self.hosts: Mapping[str, HostPlacement] = dict(hosts or {})
        self.registry = Registry()
        self._clock = clock
        self._svids: dict[str, tuple[Svid, dt.datetime]] = {}
        self._nonces = itertools.count(1)
        self._cache: dict[str, tuple[int, dict[str, dict[str, Message]]]] = {}
        self.pushes = 0

    # -- identities ---------------------------------------------------------------------

    def svid(self, node_id: str) -> Svid | None:
        held = self._svids.get(node_id)
        return held[0] if held else None

    def _issue(self, sidecar: Sidecar) -> None:
        now = self._clock()
        svid = self.authority.issue(
            service_id(sidecar.service, self.trust_domain), self.svid_lifetime, now=now
        )
        self._svids[sidecar.node_id] = (svid, now)

    async def rotate_due(self) -> int:
        """Re-issue every certificate past half its life; return how many were renewed.

        Renewing at half-life leaves the other half for a slow push (or a control plane that
        is down for a while): the sidecar never holds an expired certificate while it runs.
        """
        now = self._clock()
        renewed = 0
        for sidecar in self.registry.sidecars():
            held = self._svids.get(sidecar.node_id)
            if held is None or now >= held[1] + self.svid_lifetime / 2:
                self._issue(sidecar)
                renewed += 1
        if renewed:
            await self.registry.bump()
        return renewed

    async def keep_rotating(self) -> None:
        step = min(max(self.svid_lifetime.total_seconds() / 10, 0.2), 30.0)
        while True:
            await asyncio.sleep(step)
            await self.rotate_due()

    def refusal(self, sidecar: Sidecar, peer: str | None) -> str | None:
        """Why a sidecar may not join (None: it may). Several hosts: the peer's host credential
        covers exactly the instances placed on that host, announced at that host's address,
        so a host gets the identities of its own services and of no other's."""
        if not self.hosts:
            return None  # one host: the socket's file mode is the authentication
        by_id = {host_id(name, self.trust_domain): name for name in self.hosts}
        host = by_id.get(peer or "")
        if host is None:
            return f"{peer or 'no certificate'} is not a host credential of this mesh"
        placement = self.hosts[host]
        if placement.instances.get(sidecar.node_id) != sidecar.service:
            return f"host {host} runs no instance {sidecar.node_id} of {sidecar.service}"
        if sidecar.inbound_host != placement.address:
            return (
                f"{sidecar.node_id} announces {sidecar.inbound_host}, "
                f"not host {host}'s address {placement.address}"
            )
        return None

    # -- snapshots ----------------------------------------------------------------------

    def resources(self, node_id: str) -> dict[str, dict[str, Message]]:
        generation = self.registry.generation
        cached = self._cache.get(node_id)
        if cached and cached[0] == generation:
            return cached[1]
        sidecar = self.registry.get(node_id)
        if sidecar is None:
            return {}
        view = MeshView(tuple(self.registry.sidecars()), self.traffic, self.trust_domain)
        built = resources_for(sidecar, view, self.policy.for_callee(sidecar.service))
        if node_id not in self._svids:
            self._issue(sidecar)
        svid, _ = self._svids[node_id]
        built[SECRET] = {
            "svid": svid_secret(svid.certificate_pem, svid.private_key_pem),
            "trust-bundle": bundle_secret(self.authority.bundle_pem()),
        }
        self._cache[node_id] = (generation, built)
        return built

    # -- streams ------------------------------------------------------------------------

    async def serve_stream(
        self,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        allowed: frozenset[str],
        peer: str | None = None,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        """Serve one stream; RefusedError once the sidecar asked for what it may not have."""
        stream = _Stream(allowed, peer)
        outbox: asyncio.Queue[discovery_pb2.DiscoveryResponse | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(stream, requests, outbox))
        watcher = asyncio.create_task(self._watch(stream, outbox))
        try:
            while (response := await outbox.get()) is not None:
                yield response
            if stream.refused is not None:
                raise RefusedError(stream.refused)
        finally:
            reader.cancel()
            watcher.cancel()
            if stream.node_id is not None:
                await self.registry.disconnect(stream.node_id)
                if self.registry.get(stream.node_id) is None:
                    self._svids.pop(stream.node_id, None)
                    self._cache.pop(stream.node_id, None)

    async def _read(
        self,
        stream: _Stream,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        outbox: asyncio.Queue[discovery_pb2.DiscoveryResponse | None],
    ) -> None:
        try:
            async for request in requests:
                if stream.node_id is None and request.node.id:
                    metadata = json_format.MessageToDict(request.node.metadata)
                    sidecar = Sidecar.from_metadata(request.node.id, metadata)
                    refused = self.refusal(sidecar, stream.peer)
                    if refused is not None:
                        log.warning("refused a sidecar: %s", refused)
                        stream.refused = refused
                        return
                    stream.node_id = sidecar.node_id
                    await self.registry.connect(sidecar)
                if stream.node_id is None or request.type_url not in stream.allowed:
                    continue
                subscription = stream.subscriptions.setdefault(request.type_url, _Subscription())
                if request.HasField("error_detail"):
                    log.warning(
                        "sidecar %s refused %s version %s: %s",
                        stream.node_id,
                        request.type_url,
                        request.version_info,
                        request.error_detail.message,
                    )
                names = frozenset(request.resource_names)
                if request.response_nonce and request.response_nonce != subscription.nonce:
                    continue  # an answer to a response that a newer one has replaced
                if request.response_nonce and names == subscription.names:
                    continue  # ACK or NACK of the latest: nothing new to send
                subscription.names = names
                response = self._response(stream, request.type_url, force=True)
                if response is not None:
                    await outbox.put(response)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("xDS stream of %s failed", stream.node_id)
            raise
        finally:
            await outbox.put(None)

    async def _watch(
        self, stream: _Stream, outbox: asyncio.Queue[discovery_pb2.DiscoveryResponse | None]
    ) -> None:
        seen = self.registry.generation
        while True:
            seen = await self._next_generation(seen)
            # Clusters before endpoints, listeners before routes: Envoy warms in that order.
            for type_url in (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET):
                if type_url in stream.subscriptions:
                    response = self._response(stream, type_url, force=False)
                    if response is not None:
                        await outbox.put(response)

    async def _next_generation(self, seen: int) -> int:
        async with self.registry.changed:
            await self.registry.changed.wait_for(lambda: self.registry.generation != seen)
            return self.registry.generation

    def _response(
        self, stream: _Stream, type_url: str, *, force: bool
    ) -> discovery_pb2.DiscoveryResponse | None:
        if stream.node_id is None:
            return None
        subscription = stream.subscriptions[type_url]
        everything = self.resources(stream.node_id).get(type_url, {})
        if type_url in WILDCARD_TYPES and not subscription.names - {"*"}:
            chosen = everything
        else:
            chosen = {n: r for n, r in everything.items() if n in subscription.names}
        packed = []
        digest = hashlib.sha256()
        for name in sorted(chosen):
            resource = any_pb2.Any()
            resource.Pack(chosen[name])
            packed.append(resource)
            digest.update(name.encode())
            digest.update(resource.value)
        version = digest.hexdigest()[:16]
        if not force and version == subscription.version:
            return None
        subscription.version = version
        subscription.nonce = str(next(self._nonces))
        self.pushes += 1
        return discovery_pb2.DiscoveryResponse(
            version_info=version,
            resources=packed,
            type_url=type_url,
            nonce=subscription.nonce,
        )


if TYPE_CHECKING:
    _Context = grpc.aio.ServicerContext[
        discovery_pb2.DiscoveryRequest, discovery_pb2.DiscoveryResponse
    ]


def _peer_id(context: _Context) -> str | None:
    """The SPIFFE ID in the peer's verified TLS client certificate (None without TLS)."""
    pem = next(iter(context.auth_context().get("x509_pem_cert", ())), None)
    return spiffe_id_of(pem) if pem else None


async def _serve(
    control_plane: ControlPlane,
    requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
    allowed: frozenset[str],
    context: _Context,
) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
    try:
        async for response in control_plane.serve_stream(requests, allowed, _peer_id(context)):
            yield response
    except RefusedError as refused:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(refused))


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, control_plane: ControlPlane) -> None:
        self._control_plane = control_plane

    async def StreamAggregatedResources(  # noqa: N802 - the proto's name
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: _Context,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        async for response in _serve(self._control_plane, request_iterator, ADS_TYPES, context):
            yield response


class SecretDiscovery(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(self, control_plane: ControlPlane) -> None:
        self._control_plane = control_plane

    async def StreamSecrets(  # noqa: N802 - the proto's name
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: _Context,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        async for response in _serve(self._control_plane, request_iterator, SDS_TYPES, context):
            yield response


def add_to_server(server: grpc.aio.Server, control_plane: ControlPlane) -> None:
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
        AggregatedDiscovery(control_plane), server
    )
    sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(
        SecretDiscovery(control_plane), server
    )
