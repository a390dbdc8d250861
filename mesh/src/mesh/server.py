"""The control plane process: loads the mesh settings, opens the CA, serves xDS until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import signal
from pathlib import Path

import grpc
from aiohttp import web

from mesh.authority import CertificateAuthority, control_plane_id
from mesh.settings import MeshSettings
from mesh.xds import ControlPlane, add_to_server

log = logging.getLogger("mesh")


# The xDS server's own certificate (several hosts): re-issued at half this life.
SERVER_CERTIFICATE_LIFETIME = dt.timedelta(hours=24)


def build(settings: MeshSettings, ca_dir: Path) -> ControlPlane:
    # Several hosts: the root was made by `souk secrets` and copied here; one made now would
    # be trusted by no other host, so a missing root is an error, not a new CA.
    authority = (
        CertificateAuthority.load(ca_dir)
        if settings.hosts
        else CertificateAuthority.load_or_create(ca_dir, settings.trust_domain)
    )
    return ControlPlane(
        authority,
        settings.policy,
        settings.traffic,
        svid_lifetime=settings.svid_lifetime,
        trust_domain=settings.trust_domain,
        hosts=settings.hosts,
    )


class ServerCertificate:
    """The xDS server's TLS certificate, issued by the mesh's own CA to
    ``spiffe://<trust domain>/control-plane`` (and the address it listens on), and its trust
    in clients: only certificates from the same root (the hosts' credentials) get in. gRPC
    asks before each handshake; a certificate past half its life is replaced then."""

    def __init__(
        self,
        authority: CertificateAuthority,
        trust_domain: str,
        address: str | None,
        lifetime: dt.timedelta = SERVER_CERTIFICATE_LIFETIME,
    ) -> None:
        self._authority = authority
        self._trust_domain = trust_domain
        self._addresses = [address] if address else []
        self._lifetime = lifetime
        self._renew_at = dt.datetime.min.replace(tzinfo=dt.UTC)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        now = dt.datetime.now(dt.UTC)
        svid = self._authority.issue(
            control_plane_id(self._trust_domain), self._lifetime, now=now, addresses=self._addresses
        )
        self._renew_at = now + self._lifetime / 2
        return grpc.ssl_server_certificate_configuration(
            [(svid.private_key_pem, svid.certificate_pem)],
            root_certificates=self._authority.bundle_pem(),
        )

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        return self._configuration() if dt.datetime.now(dt.UTC) >= self._renew_at else None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._configuration(),
            self._fetch,  # type: ignore[arg-type]  # gRPC documents None as "unchanged"
            require_client_authentication=True,
        )


def _listen_address(listen: str) -> str | None:
    host = listen.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


async def start(control_plane: ControlPlane, listen: str) -> grpc.aio.Server:
    """Serve xDS on ``listen``: ``unix:/path`` (one host: only this user may connect), or
    ``host:port`` over TLS requiring a client certificate from the mesh's root when the
    control plane serves several hosts (plaintext ``host:port`` otherwise: tests only)."""
    socket_path = Path(listen.removeprefix("unix:")) if listen.startswith("unix:") else None
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)
    server = grpc.aio.server()
    add_to_server(server, control_plane)
    if control_plane.hosts and socket_path is None:
        certificate = ServerCertificate(
            control_plane.authority,
            control_plane.trust_domain,
            _listen_address(listen),
            SERVER_CERTIFICATE_LIFETIME,
        )
        bound = server.add_secure_port(listen, certificate.credentials())
    else:
        bound = server.add_insecure_port(listen)
    if bound == 0 and socket_path is None:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    if socket_path is not None:
        # Private keys travel on this socket: only this user may connect.
        socket_path.chmod(0o600)
    return server


def write_status(control_plane: ControlPlane, path: Path) -> None:
    """What `souk mesh status` shows of the control plane: identities, expiry, policy."""
    instances = []
    for sidecar in control_plane.registry.sidecars():
        svid = control_plane.svid(sidecar.node_id)
        instances.append(
            {
                "instance": sidecar.node_id,
                "service": sidecar.service,
                "inbound": f"{sidecar.inbound_host}:{sidecar.inbound_port}",
                "spiffe_id": svid.spiffe_id if svid else None,
                "not_after": svid.not_after.isoformat() if svid else None,
                "outbound": dict(sidecar.outbound),
            }
        )
    status = {
        "updated": dt.datetime.now(dt.UTC).isoformat(),
        "svid_lifetime_seconds": control_plane.svid_lifetime.total_seconds(),
        "pushes": control_plane.pushes,
        "instances": instances,
        "policy": {
            callee: {
                "closed": list(rules.closed),
                "allow": [{"from": list(r.callers), "routes": list(r.routes)} for r in rules.rules],
            }
            for callee, rules in control_plane.policy.callees.items()
        },
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(status, indent=2))
    temporary.replace(path)


async def run(settings: MeshSettings, listen: str, data_dir: Path, *, ops_port: int = 0) -> None:
    control_plane = build(settings, data_dir / "ca")
    server = await start(control_plane, listen)
    ops = await _serve_ops(ops_port) if ops_port else None
    log.info("control plane serving xDS on %s", listen)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    rotating = asyncio.create_task(control_plane.keep_rotating())
    status_path = data_dir / "status.json"
    reporting = asyncio.create_task(_keep_reporting(control_plane, status_path))
    await stopping.wait()
    rotating.cancel()
    reporting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(rotating, reporting)
    await server.stop(grace=1)
    if ops is not None:
        await ops.cleanup()


async def _serve_ops(port: int) -> web.AppRunner:
    """/healthz and /readyz on a loopback port, for the supervisor's probes."""

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _keep_reporting(control_plane: ControlPlane, path: Path) -> None:
    seen = -1
    while True:
        if control_plane.registry.generation != seen:
            seen = control_plane.registry.generation
            write_status(control_plane, path)
        await asyncio.sleep(0.5)
