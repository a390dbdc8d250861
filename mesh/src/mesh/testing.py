"""Real Envoy sidecars and a real control plane for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from mesh.registry import Sidecar
from mesh.server import build, start
from mesh.settings import MeshSettings
from mesh.sidecar import SidecarLaunch
from mesh.xds import ControlPlane


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningSidecar:
    launch: SidecarLaunch
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.launch.admin_port}"

    @property
    def inbound_port(self) -> int:
        return self.launch.sidecar.inbound_port

    def outbound_url(self, callee: str) -> str:
        return f"http://127.0.0.1:{self.launch.sidecar.outbound[callee]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class MeshUnderTest:
    """A control plane serving in this event loop and the sidecars started against it."""

    directory: Path
    control_plane: ControlPlane
    server: grpc.aio.Server
    listen: str
    sidecars: dict[str, RunningSidecar] = field(default_factory=dict)
    _rotation: asyncio.Task[None] | None = None

    def start_sidecar(
        self,
        node_id: str,
        service: str,
        app: str,
        *,
        outbound: Mapping[str, int] | None = None,
        grpc_app: bool = False,
        inbound_port: int | None = None,
    ) -> RunningSidecar:
        sidecar = Sidecar(
            node_id=node_id,
            service=service,
            inbound_port=inbound_port or free_port(),
            app_address=app,
            grpc=grpc_app,
            outbound=dict(outbound or {}),
        )
        launch = SidecarLaunch(sidecar, admin_port=free_port(), control_plane=self.listen)
        bootstrap = launch.write_bootstrap(self.directory)
        log_path = self.directory / f"{node_id}.envoy.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own Envoy binary and arguments
                launch.command(bootstrap, log_level=os.environ.get("SOUK_ENVOY_LOG", "warning")),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        running = RunningSidecar(launch, process, log_path)
        self.sidecars[node_id] = running
        return running

    async def stop_control_plane(self) -> None:
        if self._rotation is not None:
            self._rotation.cancel()
        await self.server.stop(grace=None)

    async def restart_control_plane(self, settings: MeshSettings) -> None:
        """A new control plane (same CA directory), as after a crash and a restart."""
        self.control_plane = build(settings, self.directory / "ca")
        self.server = await start(self.control_plane, self.listen)
        self._rotation = asyncio.create_task(self.control_plane.keep_rotating())

    def close(self) -> None:
        for running in self.sidecars.values():
            running.stop()


@contextlib.asynccontextmanager
async def mesh_under_test(directory: Path, settings: MeshSettings) -> AsyncIterator[MeshUnderTest]:
    listen = f"unix:{directory / 'xds.sock'}"
    control_plane = build(settings, directory / "ca")
    server = await start(control_plane, listen)
    mesh = MeshUnderTest(directory, control_plane, server, listen)
    mesh._rotation = asyncio.create_task(control_plane.keep_rotating())
    try:
        yield mesh
    finally:
        mesh.close()
        await mesh.stop_control_plane()


async def wait_until_ready(running: RunningSidecar, *, listeners: int, within: float = 20) -> None:
    """Wait until the sidecar has taken its listeners (inbound + outbound) and is live."""
    import aiohttp  # noqa: PLC0415 - a test dependency only

    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if running.process.poll() is not None:
                raise RuntimeError(
                    f"sidecar {running.launch.sidecar.node_id} exited: "
                    + running.log_path.read_text()[-3000:]
                )
            try:
                async with session.get(f"{running.admin}/listeners?format=json") as answer:
                    body = await answer.json(content_type=None)
                async with session.get(f"{running.admin}/ready") as ready:
                    live = ready.status == 200
                if live and len(body.get("listener_statuses", [])) >= listeners:
                    return
            except (aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(
        f"sidecar {running.launch.sidecar.node_id} not ready: "
        + running.log_path.read_text()[-3000:]
    )
