"""gRPC beside HTTP in one process: a server with health, reflection and request context.

A service's composition root creates a :class:`GrpcServer` and hands its ``start``,
``stop`` and ``check`` to :func:`chassis.create_app`. Callers reach a gRPC service's
replicas through one :func:`channel_for` channel that balances calls round robin.

gRPC core is not fork-safe: servers and channels are created inside the running event
loop (in ``start`` and by callers at start-up), never at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from chassis.auth import InvalidTokenError, KeysUnavailableError
from chassis.logs import get_logger
from chassis.requests import REQUEST_ID_HEADER, outbound_headers, request_id_from, request_id_var
from chassis.resilience import deadline
from chassis.tracing import build_tracer_provider, propagator

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

    from chassis.auth import AccessTokenValidator
    from chassis.settings import ServiceSettings

Register = Callable[[grpc.aio.Server], None]
"""Adds a service's servicers to the server, e.g. ``add_InventoryServicer_to_server``."""

_Context = grpc.aio.ServicerContext[Any, Any]

_log = get_logger("chassis.grpc")
_access_log = get_logger("chassis.access")
# Health checks are frequent and uninteresting, like /healthz: served, but not logged.
_QUIET_SERVICES = (f"/{health.SERVICE_NAME}/",)
_ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")
# Load balancers and operators probe these without a token, as they do /healthz over HTTP.
_OPEN_SERVICES = (f"/{health.SERVICE_NAME}/", f"/{reflection.SERVICE_NAME}/")

Behaviour = Callable[..., Any]
"""A servicer method as gRPC calls it: ``(request, context)``, a coroutine or async generator."""


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
        if settings.grpc_port is None:
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
        interceptors: list[grpc.aio.ServerInterceptor] = []
        if self._scopes is not None:
            validator = getattr(app.state, "token_validator", None) if app else None
            if validator is None:
                raise RuntimeError(
                    f"{self._settings.service} checks the tokens of gRPC calls but has no "
                    f"token validator: set {self._settings.model_config.get('env_prefix', '')}"
                    "AUTH_ISSUER"
                )
            interceptors.append(BearerTokenInterceptor(validator, self._scopes))
        self._tracer_provider = build_tracer_provider(self._settings)
        tracer = self._tracer_provider.get_tracer(f"{self._settings.service}.grpc")
        # SO_REUSEPORT (gRPC's default on Linux) would let a second process bind the same
        # port and silently take half the calls; a clash must fail start-up instead.
        # The call context comes first, so a refused token is logged under its request id.
        server = grpc.aio.server(
            interceptors=[_CallContextInterceptor(tracer), *interceptors],
            options=[("grpc.so_reuseport", 0)],
        )
        self._register(server)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
        )
        self._port = server.add_insecure_port(f"{self._settings.host}:{self._settings.grpc_port}")
        await server.start()
        self._server = server
        for name in (*self._service_names, health.OVERALL_HEALTH):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        _log.info("grpc serving", port=self._port)

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


class _CallContextInterceptor(grpc.aio.ServerInterceptor):
    """Runs every call inside its caller's trace and request id, and logs it once."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _rewrapped(handler, _Observer(self._tracer, handler_call_details.method))


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses a call unless the bearer token in its metadata grants its method's scopes.

    ``scopes`` maps full method names (``/souk.inventory.v1.Inventory/Reserve``) to the
    scopes each requires (an empty list: any valid token). A method not listed is refused
    to everyone, PERMISSION_DENIED: a method added to the .proto but forgotten here must not
    be open to any token. Health and reflection stay open. No token or a refused one is
    UNAUTHENTICATED, a missing scope PERMISSION_DENIED, keys that cannot be fetched
    UNAVAILABLE.
    """

    def __init__(
        self, validator: AccessTokenValidator, scopes: Mapping[str, Collection[str]]
    ) -> None:
        self._validator = validator
        self._scopes = {method: frozenset(required) for method, required in scopes.items()}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(_OPEN_SERVICES):
            return handler
        required = self._scopes.get(method)
        return _rewrapped(handler, lambda behaviour: self._guarded(behaviour, required))

    def _guarded(self, behaviour: Behaviour, required: frozenset[str] | None) -> Behaviour:
        if inspect.isasyncgenfunction(behaviour):

            async def streaming(request: Any, context: _Context) -> AsyncIterator[Any]:
                await self._check(context, required)
                async for response in behaviour(request, context):
                    yield response

            return streaming

        if inspect.iscoroutinefunction(behaviour):

            async def unary(request: Any, context: _Context) -> Any:
                await self._check(context, required)
                return await behaviour(request, context)

            return unary

        # A plain function runs in a thread pool, where this check cannot run first.
        raise TypeError("a gRPC method whose token is checked must be async")

    async def _check(self, context: _Context, required: frozenset[str] | None) -> None:
        if required is None:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "No scopes are declared for this method: it is closed to every caller.",
            )
        token = _bearer_token(context.invocation_metadata() or ())
        if token is None:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "This call needs an access token: send metadata authorization: Bearer <token>.",
            )
        try:
            access = await self._validator.validate(token)
        except InvalidTokenError as error:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, error.description)
        except KeysUnavailableError:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "The issuer's signing keys cannot be fetched just now; try again shortly.",
            )
        if not access.grants(*required):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"This call needs the scope(s): {' '.join(sorted(required))}.",
            )


def _bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _rewrapped(
    handler: grpc.RpcMethodHandler[Any, Any], wrap: Callable[[Behaviour], Behaviour]
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` with its behaviour (whichever of the four kinds) passed through ``wrap``."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary), handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            wrap(handler.stream_stream), handler.request_deserializer, handler.response_serializer
        )
    return handler


class _Observer:
    """Wraps one method's behaviour (a coroutine or an async generator) in its call context."""

    def __init__(self, tracer: trace.Tracer, method: str) -> None:
        self._tracer = tracer
        self._method = method

    def __call__(self, behaviour: Behaviour) -> Behaviour:
        if inspect.isasyncgenfunction(behaviour):

            async def streaming(request: Any, context: _Context) -> AsyncIterator[Any]:
                with self._call(context):
                    async for response in behaviour(request, context):
                        yield response

            return streaming

        if inspect.iscoroutinefunction(behaviour):

            async def unary(request: Any, context: _Context) -> Any:
                with self._call(context):
                    return await behaviour(request, context)

            return unary

        # gRPC runs a plain function in a thread pool, out of reach of this call's context.
        return behaviour

    @contextlib.contextmanager
    def _call(self, context: _Context) -> Iterator[None]:
        metadata = {
            key: value
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str)
        }
        request_id = request_id_from(metadata.get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        code = grpc.StatusCode.UNKNOWN
        started = time.perf_counter()
        span = self._tracer.start_span(
            self._method, context=propagator.extract(carrier=metadata), kind=SpanKind.SERVER
        )
        try:
            with (
                trace.use_span(span, end_on_exit=False, record_exception=False),
                structlog.contextvars.bound_contextvars(request_id=request_id),
            ):
                try:
                    yield
                    code = _status_set_on(context) or grpc.StatusCode.OK
                except grpc.aio.AbortError:
                    code = _status_set_on(context) or grpc.StatusCode.UNKNOWN
                    raise
                except asyncio.CancelledError:
                    # The caller went away or its deadline passed while the call was running.
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    # gRPC answers UNKNOWN; logged here, inside the call's request id and trace.
                    _log.error(
                        "unhandled error",
                        method=self._method,
                        error=type(exc).__name__,
                        exc_info=exc,
                    )
                    raise
                finally:
                    self._record(span, code, time.perf_counter() - started)
        finally:
            span.end()
            request_id_var.reset(token)

    def _record(self, span: trace.Span, code: grpc.StatusCode, seconds: float) -> None:
        span.set_attribute("rpc.system", "grpc")
        span.set_attribute("rpc.method", self._method)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_FAULTS:
            span.set_status(Status(StatusCode.ERROR))
        if not self._method.startswith(_QUIET_SERVICES):
            _access_log.info(
                "rpc",
                method=self._method,
                status=code.name,
                duration_ms=round(seconds * 1000, 2),
            )


def _status_set_on(context: _Context) -> grpc.StatusCode | None:
    # The stubs promise a StatusCode; until set_code() or abort(), code() returns None.
    return cast("grpc.StatusCode | None", context.code())


# The codes that mean the server failed (OpenTelemetry's rule), rather than the caller.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


def grpc_target(urls: Sequence[str]) -> str:
    """One gRPC target naming every replica: ``grpc://127.0.0.1:1``, ``…:2`` → ``ipv4:…``.

    IP addresses become an ``ipv4:``/``ipv6:`` address list; a single host name becomes a
    ``dns:///`` target, whose addresses the resolver looks up.
    """
    if not urls:
        raise ValueError("no gRPC address given")
    addresses: list[tuple[str, int]] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "grpc" or not parts.hostname or parts.port is None:
            raise ValueError(f"{url!r} is not a grpc://host:port address")
        addresses.append((parts.hostname, parts.port))
    versions: set[int] = set()
    for host, _ in addresses:
        try:
            versions.add(ipaddress.ip_address(host).version)
        except ValueError:
            versions.add(0)
    if versions == {4}:
        return "ipv4:" + ",".join(f"{host}:{port}" for host, port in addresses)
    if versions == {6}:
        return "ipv6:" + ",".join(f"[{host}]:{port}" for host, port in addresses)
    if len(addresses) == 1:
        host, port = addresses[0]
        return f"dns:///{host}:{port}"
    raise ValueError(f"give replicas as IP addresses of one family to balance over: {urls}")


def channel_for(urls: Sequence[str]) -> grpc.aio.Channel:
    """A channel to every replica in ``urls`` (``settings.upstream(name)``), round robin.

    Each call carries the current request id and trace context as metadata, and no longer
    a timeout than is left of the request's deadline (``grpc-timeout``). Create it
    inside the running event loop and close it at shutdown.
    """
    return grpc.aio.insecure_channel(
        grpc_target(urls), options=[_ROUND_ROBIN], interceptors=[_OutboundContextInterceptor()]
    )


class _OutboundContextInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds ``x-request-id`` and ``traceparent`` to each call's metadata (the caller's win)."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_context(client_call_details), request)

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(_with_context(client_call_details), request)

    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_context(client_call_details), request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(_with_context(client_call_details), request_iterator)


def _with_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    for key, value in outbound_headers().items():
        if key not in metadata.keys():  # noqa: SIM118 - `in` on Metadata is typed by item
            metadata[key] = value
    return grpc.aio.ClientCallDetails(
        details.method,
        deadline.bounded_or_none(details.timeout),
        metadata,
        details.credentials,
        details.wait_for_ready,
    )
