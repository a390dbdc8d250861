"""gRPC beside HTTP: health, reflection, request context in and out, round robin."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from fastapi import FastAPI
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from chassis import ServiceSettings
from chassis.grpc import GrpcServer, channel_for, grpc_target
from chassis.requests import request_id_var
from chassis.resilience.shedding import Lanes
from chassis.testing import ReadableTokens, readable_bearer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import httpx

    from chassis.tests.conftest import LogCapture

SERVICE = "souk.test.Echo"
WHOAMI = f"/{SERVICE}/Whoami"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def echo_settings(instance: str = "echo-1") -> ServiceSettings:
    return ServiceSettings(service="echo", instance=instance, grpc_port=0, shutdown_timeout=1)


def echo_server(
    settings: ServiceSettings, scopes: dict[str, list[str]] | None = None
) -> GrpcServer:
    """A server whose one method answers who served it, under which request id and trace."""

    async def whoami(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if request == b"missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if request == b"crash":
            raise RuntimeError("the servicer has a bug")
        if request == b"slow":
            await asyncio.sleep(5)
        return json.dumps(
            {
                "instance": settings.instance,
                "request_id": request_id_var.get(),
                "trace_id": current_trace_id(),
            }
        ).encode()

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Whoami": grpc.unary_unary_rpc_method_handler(whoami)}
    )
    return GrpcServer(
        settings,
        register=lambda server: server.add_generic_rpc_handlers((handler,)),
        service_names=[SERVICE],
        scopes=scopes,
    )


@contextlib.asynccontextmanager
async def serving(*instances: str) -> AsyncIterator[list[GrpcServer]]:
    servers = [echo_server(echo_settings(instance)) for instance in instances]
    for server in servers:
        await server.start()
    try:
        yield servers
    finally:
        for server in servers:
            await server.stop()


def urls_of(*servers: GrpcServer) -> list[str]:
    return [f"grpc://127.0.0.1:{server.port}" for server in servers]


async def whoami(
    channel: grpc.aio.Channel, request: bytes = b"", deadline: float = 5
) -> dict[str, Any]:
    answer: bytes = await channel.unary_unary(WHOAMI)(request, timeout=deadline)
    result: dict[str, Any] = json.loads(answer)
    return result


def rpc_lines(logs: LogCapture) -> list[dict[str, Any]]:
    return [r for r in logs.records() if r.get("logger") == "chassis.access"]


async def health_of(channel: grpc.aio.Channel, service: str) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5
    )
    return answer.status


async def test_a_started_server_reports_serving_for_its_services_and_as_a_whole() -> None:
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        assert await health_of(channel, SERVICE) == SERVING
        assert await health_of(channel, "") == SERVING
        await server.check()


async def test_watchers_see_not_serving_as_soon_as_the_server_stops() -> None:
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE)
        )
        first = await watch.read()
        stopping = asyncio.create_task(server.stop())
        second = await watch.read()
        await stopping

    assert (first.status, second.status) == (SERVING, NOT_SERVING)


async def test_readiness_fails_before_start_and_after_stop() -> None:
    server = echo_server(echo_settings())
    with pytest.raises(RuntimeError, match="not serving"):
        await server.check()

    await server.start()
    await server.stop()

    with pytest.raises(RuntimeError, match="not serving"):
        await server.check()


def test_a_server_needs_a_grpc_port() -> None:
    with pytest.raises(ValueError, match="GRPC_PORT"):
        echo_server(ServiceSettings(service="echo"))


async def test_reflection_lists_the_service_health_and_reflection() -> None:
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        answers = [answer async for answer in stream]

    names = {service.name for service in answers[0].list_services_response.service}
    assert names == {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


async def test_a_call_carries_the_callers_request_id_and_trace_into_the_server() -> None:
    provider = TracerProvider()
    token = request_id_var.set("order-42")
    try:
        async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
            with provider.get_tracer("caller").start_as_current_span("checkout"):
                caller_trace = current_trace_id()
                seen = await whoami(channel)
    finally:
        request_id_var.reset(token)

    assert seen["request_id"] == "order-42"
    assert seen["trace_id"] == caller_trace is not None


async def test_a_call_without_context_gets_a_fresh_request_id_and_trace() -> None:
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        first, second = await whoami(channel), await whoami(channel)

    assert None not in (first["request_id"], first["trace_id"])
    assert first["request_id"] != second["request_id"]
    assert first["trace_id"] != second["trace_id"]


async def test_each_call_writes_one_access_line_with_method_status_and_duration(
    capture_logs: Callable[[ServiceSettings], LogCapture],
) -> None:
    logs = capture_logs(echo_settings())
    token = request_id_var.set("order-7")
    try:
        async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
            await whoami(channel)
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await whoami(channel, b"missing")
            await health_of(channel, SERVICE)
    finally:
        request_id_var.reset(token)

    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    lines = rpc_lines(logs)
    assert [(r["event"], r["method"], r["status"]) for r in lines] == [
        ("rpc", WHOAMI, "OK"),
        ("rpc", WHOAMI, "NOT_FOUND"),
    ]
    assert all(r["request_id"] == "order-7" and r["duration_ms"] >= 0 for r in lines)
    assert all(len(r["trace_id"]) == 32 for r in lines)


async def test_a_failed_or_abandoned_call_is_logged_as_unknown_or_cancelled(
    capture_logs: Callable[[ServiceSettings], LogCapture],
) -> None:
    logs = capture_logs(echo_settings())
    async with serving("echo-1") as [server], channel_for(urls_of(server)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as crashed:
            await whoami(channel, b"crash")
        with pytest.raises(grpc.aio.AioRpcError) as abandoned:
            await whoami(channel, b"slow", deadline=0.2)
        # The server notices the deadline a moment after the caller does.
        for _ in range(100):
            if len(rpc_lines(logs)) == 2:
                break
            await asyncio.sleep(0.05)

    assert (crashed.value.code(), abandoned.value.code()) == (
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    assert [r["status"] for r in rpc_lines(logs)] == ["UNKNOWN", "CANCELLED"]
    [error] = [r for r in logs.records() if r["event"] == "unhandled error"]
    assert error["error"] == "RuntimeError"
    assert "the servicer has a bug" in error["exception"]


async def test_one_channel_balances_calls_round_robin_over_every_replica() -> None:
    async with serving("echo-1", "echo-2") as servers, channel_for(urls_of(*servers)) as channel:
        await channel.channel_ready()
        # READY means one replica is connected; the split is measured once both answer.
        seen: set[str] = set()
        for _ in range(200):
            seen.add((await whoami(channel))["instance"])
            if len(seen) == 2:
                break
        served = [(await whoami(channel))["instance"] for _ in range(40)]

    assert set(served) == {"echo-1", "echo-2"}
    assert abs(served.count("echo-1") - served.count("echo-2")) <= 2


async def test_a_server_and_a_caller_run_beside_http_in_one_app(
    make_app: Callable[..., FastAPI],
    running: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    server = echo_server(echo_settings())
    app = make_app(
        on_startup=[server.start],
        on_shutdown=[server.stop],
        readiness_checks={"grpc": server.check},
    )

    async with running(app) as client, channel_for(urls_of(server)) as channel:
        ready = await client.get("/readyz")
        seen = await whoami(channel)

    assert (ready.status_code, ready.json()["checks"]["grpc"]) == (200, "ok")
    assert seen["instance"] == "echo-1"
    with pytest.raises(RuntimeError):
        await server.check()


@pytest.mark.parametrize(
    ("urls", "target"),
    [
        (["grpc://127.0.0.1:5001"], "ipv4:127.0.0.1:5001"),
        (["grpc://127.0.0.1:5001", "grpc://127.0.0.2:5002"], "ipv4:127.0.0.1:5001,127.0.0.2:5002"),
        (["grpc://[::1]:5001", "grpc://[::1]:5002"], "ipv6:[::1]:5001,[::1]:5002"),
        (["grpc://inventory.internal:5001"], "dns:///inventory.internal:5001"),
    ],
)
def test_replica_urls_become_one_grpc_target(urls: list[str], target: str) -> None:
    assert grpc_target(urls) == target


@pytest.mark.parametrize(
    "urls",
    [
        [],
        ["http://127.0.0.1:5001"],
        ["grpc://127.0.0.1"],
        ["grpc://a.internal:1", "grpc://b.internal:2"],
        ["grpc://127.0.0.1:1", "grpc://[::1]:2"],
    ],
)
def test_addresses_that_cannot_share_one_channel_are_refused(urls: list[str]) -> None:
    with pytest.raises(ValueError, match=r"address|grpc"):
        grpc_target(urls)


@contextlib.asynccontextmanager
async def guarded(**scopes: list[str]) -> AsyncIterator[grpc.aio.Channel]:
    """An echo server whose calls need a token ReadableTokens reads, with ``scopes`` per method."""
    app = FastAPI()
    app.state.token_validator = ReadableTokens()
    server = echo_server(echo_settings(), {f"/{SERVICE}/{m}": s for m, s in scopes.items()})
    await server.start(app)
    channel = channel_for(urls_of(server))
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop()


def bearer_metadata(subject: str, *scopes: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", readable_bearer(subject, *scopes)["Authorization"]),)


async def refusal(channel: grpc.aio.Channel, **call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await channel.unary_unary(WHOAMI)(b"", timeout=5, **call)
    return refused.value.code(), refused.value.details() or ""


async def test_a_call_without_a_token_is_unauthenticated() -> None:
    async with guarded(Whoami=["echo:read"]) as channel:
        code, details = await refusal(channel)

    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer" in details


async def test_a_call_with_a_refused_token_is_unauthenticated() -> None:
    async with guarded(Whoami=["echo:read"]) as channel:
        code, details = await refusal(channel, metadata=(("authorization", "Bearer forged"),))

    assert (code, details) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "The access token signature does not verify",
    )


async def test_a_token_without_the_methods_scope_is_permission_denied() -> None:
    async with guarded(Whoami=["echo:read"]) as channel:
        code, details = await refusal(channel, metadata=bearer_metadata("orders", "echo:write"))

    assert (code, details) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "This call needs the scope(s): echo:read.",
    )


async def test_a_token_with_the_methods_scope_is_let_through() -> None:
    async with guarded(Whoami=["echo:read"]) as channel:
        answer = await channel.unary_unary(WHOAMI)(
            b"", timeout=5, metadata=bearer_metadata("orders", "echo:read")
        )

    assert json.loads(answer)["instance"] == "echo-1"


async def test_a_method_listed_with_no_scopes_still_needs_a_valid_token() -> None:
    async with guarded(Whoami=[]) as channel:
        code, _ = await refusal(channel)
        answer = await channel.unary_unary(WHOAMI)(
            b"", timeout=5, metadata=bearer_metadata("orders")
        )

    assert code is grpc.StatusCode.UNAUTHENTICATED
    assert json.loads(answer)["instance"] == "echo-1"


async def test_a_method_not_listed_is_closed_even_to_a_valid_token() -> None:
    async with guarded(Other=["echo:read"]) as channel:
        code, details = await refusal(channel, metadata=bearer_metadata("orders", "echo:read"))

    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "No scopes are declared" in details


async def test_health_and_reflection_stay_open_without_a_token() -> None:
    async with guarded(Whoami=["echo:read"]) as channel:
        serving_status = await health_of(channel, SERVICE)
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        answers = [answer async for answer in stream]

    assert serving_status == SERVING
    assert SERVICE in {service.name for service in answers[0].list_services_response.service}


async def test_a_server_that_checks_tokens_will_not_start_without_a_validator() -> None:
    server = echo_server(echo_settings(), {WHOAMI: ["echo:read"]})

    with pytest.raises(RuntimeError, match="no token validator: set SOUK_AUTH_ISSUER"):
        await server.start(FastAPI())


async def test_calls_over_the_limit_are_refused_at_once_and_health_still_answers() -> None:
    app = FastAPI()
    app.state.lanes = lanes = Lanes.of(reads=1, writes=1, calls=1)
    server = echo_server(echo_settings())
    await server.start(app)
    try:
        async with channel_for(urls_of(server)) as channel:
            slow = asyncio.create_task(whoami(channel, b"slow", deadline=30))
            while lanes.calls.working < 1:  # noqa: ASYNC110 - the server's counter, polled
                await asyncio.sleep(0.01)  # until the slow call holds the one place
            # Refused, not queued: a queued call would still be waiting when its 3 s are up
            # (the slow one takes 5 s) and end DEADLINE_EXCEEDED.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await whoami(channel, deadline=3)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "Too many calls at once" in (refused.value.details() or "")
            # Probes are never shed.
            assert await health_of(channel, SERVICE) == SERVING
            assert (await slow)["instance"] == "echo-1"
            # The place is free again.
            assert (await whoami(channel))["instance"] == "echo-1"
    finally:
        await server.stop()
    # The app's lane: /metrics shows souk_requests_shed{lane="grpc"}.
    assert (lanes.calls.shed, lanes.calls.working) == (1, 0)
