"""What every gRPC call passes through: trace, request id, metrics and log; token checks."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from typing import TYPE_CHECKING, Any, cast

import grpc
import structlog
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from chassis import metrics
from chassis.auth import InvalidTokenError, KeysUnavailableError
from chassis.logs import get_logger
from chassis.requests import REQUEST_ID_HEADER, outbound_headers, request_id_from, request_id_var
from chassis.resilience import deadline
from chassis.tracing import activated, propagator, tracer

if TYPE_CHECKING:
    from chassis.auth import AccessTokenValidator
    from chassis.resilience.shedding import Lane

_Context = grpc.aio.ServicerContext[Any, Any]

_log = get_logger("chassis.grpc")
_access_log = get_logger("chassis.access")
# Health checks are frequent and uninteresting, like /healthz: served, but not logged.
_QUIET_SERVICES = (f"/{health.SERVICE_NAME}/",)
# Load balancers and operators probe these without a token, as they do /healthz over HTTP.
_OPEN_SERVICES = (f"/{health.SERVICE_NAME}/", f"/{reflection.SERVICE_NAME}/")

Behaviour = Callable[..., Any]
"""A servicer method as gRPC calls it: ``(request, context)``, a coroutine or async generator."""


class _WrappingInterceptor(grpc.aio.ServerInterceptor):
    """A server interceptor that passes each method's behaviour through a wrapper of its own
    (`_wrapper_for`); a method it has no wrapper for is served as it is."""

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
        wrap = self._wrapper_for(handler_call_details.method)
        return handler if wrap is None else _rewrapped(handler, wrap)

    def _wrapper_for(self, method: str) -> Callable[[Behaviour], Behaviour] | None:
        raise NotImplementedError


class CallContextInterceptor(_WrappingInterceptor):
    """Runs every call inside its caller's trace and request id, and logs it once."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def _wrapper_for(self, method: str) -> Callable[[Behaviour], Behaviour]:
        return _Observer(self._tracer, method)


class ConcurrencyLimitInterceptor(_WrappingInterceptor):
    """At most ``lane.limit`` calls worked on at once; over it, RESOURCE_EXHAUSTED at once.

    gRPC's own ``maximum_concurrent_rpcs`` counts health checks too, so a busy server would
    fail its probes; health and reflection are never shed here (as /healthz over HTTP).
    """

    def __init__(self, lane: Lane) -> None:
        self._lane = lane

    def _wrapper_for(self, method: str) -> Callable[[Behaviour], Behaviour] | None:
        return None if method.startswith(_OPEN_SERVICES) else self._limited

    def _limited(self, behaviour: Behaviour) -> Behaviour:
        lane = self._lane
        if inspect.isasyncgenfunction(behaviour):

            async def streaming(request: Any, context: _Context) -> AsyncIterator[Any]:
                await self._admit(context)
                try:
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    lane.working -= 1

            return streaming

        if inspect.iscoroutinefunction(behaviour):

            async def unary(request: Any, context: _Context) -> Any:
                await self._admit(context)
                try:
                    return await behaviour(request, context)
                finally:
                    lane.working -= 1

            return unary

        raise TypeError("a gRPC method whose calls are limited must be async")

    async def _admit(self, context: _Context) -> None:
        lane = self._lane
        if lane.working >= lane.limit:
            lane.shed += 1
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Too many calls at once (over {lane.limit}); try again shortly.",
            )
        lane.working += 1


class BearerTokenInterceptor(_WrappingInterceptor):
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

    def _wrapper_for(self, method: str) -> Callable[[Behaviour], Behaviour] | None:
        if method.startswith(_OPEN_SERVICES):
            return None
        required = self._scopes.get(method)
        return lambda behaviour: self._guarded(behaviour, required)

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
        metadata = [
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str)
        ]
        request_id = request_id_from(dict(metadata).get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        code = grpc.StatusCode.UNKNOWN
        started = time.perf_counter()
        parent = propagator.extract(carrier=metadata)
        span = self._tracer.start_span(self._method, context=parent, kind=SpanKind.SERVER)
        try:
            with (
                activated(span, parent),
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
        rpc = metrics.rpc()
        rpc.served.labels(self._method, code.name).inc()
        rpc.serving.labels(self._method).observe(seconds)
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


class OutboundContextInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """A client span and metrics per call; ``x-request-id`` and ``traceparent`` in its
    metadata (the caller's own values win, but for the trace context: its parent is this
    call)."""

    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        with _client_call(client_call_details) as details:
            call = await continuation(details, request)
            # Waiting for the status here ends the span when the answer has come.
            await _finished(call)
            return call

    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await _ended_when_done(client_call_details, continuation, request)

    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await _ended_when_done(client_call_details, continuation, request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await _ended_when_done(client_call_details, continuation, request_iterator)


class _ClientCall:
    def __init__(self, method: str, span: trace.Span, details: grpc.aio.ClientCallDetails) -> None:
        self.method = method
        self.span = span
        self.details = details
        self.started = time.perf_counter()
        self.code = grpc.StatusCode.UNKNOWN

    def end(self, code: grpc.StatusCode) -> None:
        self.span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_FAULTS:
            self.span.set_status(Status(StatusCode.ERROR, code.name))
        self.span.end()
        rpc = metrics.rpc()
        rpc.made.labels(self.method, code.name).inc()
        rpc.making.labels(self.method).observe(time.perf_counter() - self.started)


def _start_call(details: grpc.aio.ClientCallDetails) -> _ClientCall:
    left = deadline.remaining()
    if left is not None and left <= 0:
        # grpc-timeout 0 does not stop gRPC from sending the call (and it was seen answered).
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(),
            details="the request's deadline has passed: the call was not sent",
        )
    raw: Any = details.method  # bytes on the wire side of grpc.aio, though typed str
    method = raw.decode() if isinstance(raw, bytes) else str(raw)
    service, _, name = method.lstrip("/").partition("/")
    span = tracer("chassis.grpc.client").start_span(
        method.lstrip("/"),
        kind=SpanKind.CLIENT,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    context_headers = outbound_headers()
    propagator.inject(context_headers, context=trace.set_span_in_context(span))
    for key, value in context_headers.items():
        if key in propagator.fields and key in metadata.keys():  # noqa: SIM118
            del metadata[key]
        if key not in metadata.keys():  # noqa: SIM118 - `in` on Metadata is typed by item
            metadata[key] = value
    sent = grpc.aio.ClientCallDetails(
        details.method,
        deadline.bounded_or_none(details.timeout),
        metadata,
        details.credentials,
        details.wait_for_ready,
    )
    return _ClientCall(method, span, sent)


@contextlib.contextmanager
def _client_call(details: grpc.aio.ClientCallDetails) -> Iterator[grpc.aio.ClientCallDetails]:
    call = _start_call(details)
    code = grpc.StatusCode.UNKNOWN
    try:
        yield call.details
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        code = error.code()
        raise
    except asyncio.CancelledError:
        code = grpc.StatusCode.CANCELLED
        raise
    finally:
        call.end(code)


async def _finished(call: Any) -> None:
    """Wait for the call's status; a failed call raises as awaiting it would."""
    code = await call.code()
    if code != grpc.StatusCode.OK:
        await call  # raises the AioRpcError with the status the caller will see


async def _ended_when_done(
    details: grpc.aio.ClientCallDetails, continuation: Any, request: Any
) -> Any:
    started = _start_call(details)
    call = await continuation(started.details, request)

    def done(finished: Any) -> None:
        status = asyncio.get_running_loop().create_task(finished.code())
        _status_reads.add(status)
        status.add_done_callback(_status_reads.discard)
        status.add_done_callback(
            lambda read: started.end(
                grpc.StatusCode.UNKNOWN
                if read.cancelled() or read.exception() is not None
                else read.result()
            )
        )

    call.add_done_callback(done)
    return call


# Status reads of finished streaming calls, kept until they are done.
_status_reads: set[asyncio.Task[grpc.StatusCode]] = set()
