"""The asyncio gRPC server of a process, with health, reflection and each call's context."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chassis import private_socket
from chassis.grpc.interceptors import (
    BearerTokenInterceptor,
    CallContextInterceptor,
    ConcurrencyLimitInterceptor,
)
from chassis.logs import get_logger
from chassis.resilience.shedding import Lane, Lanes
from chassis.tracing import build_tracer_provider, current_provider

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

    from chassis.settings import ServiceSettings

Register = Callable[[grpc.aio.Server], None]
"""Adds a service's servicers to the server, e.g. ``add_InventoryServicer_to_server``."""

_log = get_logger("chassis.grpc")


class GrpcServer:
    """An asyncio gRPC server on ``settings.host:settings.grpc_port`` for one app's lifespan.

    Servicer methods are ``async def`` (coroutines, or async generators for streams).
    Besides the services ``register`` adds, it serves the standard health service
    (SERVING for each of ``service_names`` and for the server as a whole while it runs,
    NOT_SERVING once it stops) and server reflection. Each call continues the caller's
    trace, carries its ``x-request-id`` into logs and writes one access log line.

    With ``scopes`` (full method name → the scopes it requires), every call but health and
    reflection needs a bearer token in its ``authorization`` metadata, judged by the app's
    ``token_validator`` (see :class:`BearerTokenInterceptor`).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        register: Register,
        service_names: Sequence[str],
        scopes: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        if settings.grpc_port is None and settings.grpc_uds is None:
            raise ValueError(
                f"{settings.service} serves gRPC but has no grpc_port: "
                f"set {settings.model_config.get('env_prefix', '')}GRPC_PORT"
            )
        self._settings = settings
        self._register = register
        self._service_names = list(service_names)
        self._scopes = scopes
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._tracer_provider: TracerProvider | None = None
        self._port: int | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        """The port the server listens on (the one chosen by the system for grpc_port 0)."""
        if self._port is None:
            raise RuntimeError("the gRPC server has not started")
        return self._port

    async def start(self, app: FastAPI | None = None) -> None:
        """Bind, start serving and report SERVING; a start-up hook for create_app."""
        self._stopping = False
        # The app's lane, so /metrics shows its occupancy and shed calls; else one of its own.
        lanes: Lanes | None = getattr(app.state, "lanes", None) if app else None
        lane = (
            lanes.calls if lanes is not None else Lane("grpc", self._settings.max_concurrent_grpc)
        )
        # Over the limit a call is refused before its token is even checked.
        interceptors: list[grpc.aio.ServerInterceptor] = [ConcurrencyLimitInterceptor(lane)]
        if self._scopes is not None:
            validator = getattr(app.state, "token_validator", None) if app else None
            if validator is None:
                raise RuntimeError(
                    f"{self._settings.service} checks the tokens of gRPC calls but has no "
                    f"token validator: set {self._settings.model_config.get('env_prefix', '')}"
                    "AUTH_ISSUER"
                )
            interceptors.append(BearerTokenInterceptor(validator, self._scopes))
        # The app's provider when there is one: one exporter per process, not one per server.
        provider = current_provider()
        if provider is None:
            provider = self._tracer_provider = build_tracer_provider(self._settings)
        tracer = provider.get_tracer(f"{self._settings.service}.grpc")
        # SO_REUSEPORT (gRPC's default on Linux) would let a second process bind the same
        # port and silently take half the calls; a clash must fail start-up instead.
        # The call context comes first, so a refused token is logged under its request id.
        server = grpc.aio.server(
            interceptors=[CallContextInterceptor(tracer), *interceptors],
            options=[("grpc.so_reuseport", 0)],
        )
        self._register(server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        path = self._settings.grpc_uds
        if path is not None:
            # With the mesh on: a Unix socket only this user (the sidecar) reaches, no port.
            private_socket.check_path(path)
            private_socket.prepare_directory(path)
            private_socket.remove_stale(path)
            with private_socket.owner_only_umask():
                server.add_insecure_port(f"unix:{path}")
            self._port = 0
        else:
            self._port = server.add_insecure_port(
                f"{self._settings.host}:{self._settings.grpc_port}"
            )
        await server.start()
        if path is not None:
            path.chmod(private_socket.SOCKET_MODE)
        self._server = server
        for name in (*self._service_names, health.OVERALL_HEALTH):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        _log.info("grpc serving", port=self._port, socket=str(path) if path else None)

    async def stop(self, _app: FastAPI | None = None) -> None:
        """Report NOT_SERVING, then let calls in flight finish for up to shutdown_timeout."""
        self._stopping = True
        if self._server is not None and self._health is not None:
            await self._health.enter_graceful_shutdown()
            await self._server.stop(self._settings.shutdown_timeout)
            self._server = None
        if self._tracer_provider is not None:
            self._tracer_provider.shutdown()
            self._tracer_provider = None

    async def check(self) -> None:
        """Readiness: the server has started and is not stopping."""
        if self._server is None or self._stopping:
            raise RuntimeError("gRPC server is not serving")
