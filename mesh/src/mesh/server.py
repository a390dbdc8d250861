"""The control plane process: loads the mesh settings, opens the CA, serves xDS until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import signal
from pathlib import Path

import grpc
from aiohttp import web

from mesh.authority import CertificateAuthority
from mesh.settings import MeshSettings
from mesh.xds import ControlPlane, add_to_server

log = logging.getLogger("mesh")


def build(settings: MeshSettings, ca_dir: Path) -> ControlPlane:
    return ControlPlane(
        CertificateAuthority.load_or_create(ca_dir, settings.trust_domain),
        settings.policy,
        settings.traffic,
        svid_lifetime=settings.svid_lifetime,
        trust_domain=settings.trust_domain,
    )


async def start(control_plane: ControlPlane, listen: str) -> grpc.aio.Server:
    """Serve xDS on ``listen`` (``unix:/path`` or ``host:port``)."""
    socket_path = Path(listen.removeprefix("unix:")) if listen.startswith("unix:") else None
    if socket_path is not None:
        socket_path.unlink(missing_ok=True)
    server = grpc.aio.server()
    add_to_server(server, control_plane)
    if server.add_insecure_port(listen) == 0 and not listen.startswith("unix:"):
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
