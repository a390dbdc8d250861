"""Channels to a gRPC upstream's replicas: round robin, each call with its context;
:class:`GrpcUpstream` adds a breaker and a bulkhead per replica, retries and the deadline."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar
from urllib.parse import urlsplit

import grpc

from chassis.grpc.interceptors import OutboundContextInterceptor
from chassis.resilience import deadline
from chassis.resilience.breaker import CircuitOpen
from chassis.resilience.bulkhead import BulkheadFull
from chassis.resilience.policy import DependencyPolicy, Pipeline, Resilience
from chassis.resilience.retry import Backoff
from chassis.upstream import UpstreamFailure

T = TypeVar("T")

_ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")


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
        grpc_target(urls), options=[_ROUND_ROBIN], interceptors=[OutboundContextInterceptor()]
    )


# Codes that say the replica could not answer now: they count against its breaker.
_UNWELL: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
# …and these may be tried again on the next replica, when the call is safe to repeat.
_RETRYABLE: Final = _UNWELL | {grpc.StatusCode.ABORTED}


def _is_unwell(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in _UNWELL


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.aio.AioRpcError) and error.code() in _RETRYABLE


class GrpcUpstream:
    """A gRPC upstream's replicas, a channel each, each behind its own breaker and bulkhead.

    Round robin over the replicas whose breaker lets calls through: a replica that stops
    answering (frozen, or dead) fails ``failure_threshold`` calls in a row, its breaker opens
    and calls go to the others at once, until a half-open probe finds it answering again.
    Each try has ``timeout`` seconds (and no more than the request's deadline leaves); a
    call that is ``safe`` to repeat is tried again on the next replica within the process's
    retry budget. The replicas' pipelines are ``<name>@<host:port>`` in ``resilience``, so
    their state is on ``/metrics`` and in ``souk resilience``; the settings' policy for
    ``<name>`` applies to each replica, and one for ``<name>@<host:port>`` to that one.

    ``call`` raises the call's own AioRpcError when a replica answered (or the last try's),
    and a transient UpstreamFailure when nothing could be sent: every breaker open, the
    bulkhead full, or the time up.
    """

    def __init__(
        self,
        name: str,
        urls: Sequence[str],
        *,
        timeout: float,
        resilience: Resilience | None = None,
        attempts: int = 2,
    ) -> None:
        if not urls:
            raise ValueError(f"no gRPC address given for {name}")
        self.name = name
        self.timeout = timeout
        resilience = resilience or Resilience()
        self._budget = resilience.budget
        # The whole call: every try its full time, and the backoffs between (at most
        # max_delay each), so the last try is cut by its own timeout, not by this one.
        policy = DependencyPolicy(attempts=attempts)
        defaults = policy.model_copy(
            update={"timeout": attempts * timeout + (attempts - 1) * policy.max_delay}
        )
        self._replicas = [
            (
                channel_for([url]),
                resilience.pipeline(f"{name}@{_address(url)}", defaults, family=name),
            )
            for url in urls
        ]
        self._policy = self._replicas[0][1].policy
        self._backoff = Backoff(
            self._policy.attempts, self._policy.base_delay, self._policy.max_delay
        )
        self._next = 0

    @property
    def pipelines(self) -> list[Pipeline]:
        """The replicas' pipelines, in the order of ``urls``."""
        return [pipeline for _, pipeline in self._replicas]

    async def call(self, attempt: Callable[[grpc.aio.Channel], Awaitable[T]], *, safe: bool) -> T:
        """``attempt(channel)`` on a replica that is up; see the class for what it raises."""
        seconds = deadline.bounded(self._policy.timeout)
        try:
            deadline.check()
            self._budget.deposit()
            async with asyncio.timeout(seconds):
                return await self._with_retries(attempt, safe=safe)
        except deadline.DeadlineExceeded as error:
            raise UpstreamFailure(self.name, str(error), transient=True) from error
        except TimeoutError as error:
            raise UpstreamFailure(
                self.name, f"no answer within {seconds:.3f}s", transient=True
            ) from error
        except (CircuitOpen, BulkheadFull) as error:
            raise UpstreamFailure(self.name, str(error), transient=True) from error

    async def _with_retries(
        self, attempt: Callable[[grpc.aio.Channel], Awaitable[T]], *, safe: bool
    ) -> T:
        for retry in range(1, self._backoff.attempts + 1):
            channel, pipeline = self._pick()
            try:
                with deadline.within(self.timeout):
                    return await pipeline.once(functools.partial(attempt, channel), _is_unwell)
            except Exception as error:
                if (
                    retry >= self._backoff.attempts
                    or not safe
                    or not (_is_retryable(error) or isinstance(error, BulkheadFull))
                    or not self._budget.withdraw()
                ):
                    raise
            pipeline.retries += 1
            await asyncio.sleep(self._backoff.delay(retry))
        raise AssertionError("unreachable")  # pragma: no cover

    def _pick(self) -> tuple[grpc.aio.Channel, Pipeline]:
        """The next replica in turn whose breaker lets a call through; if none does, the
        next one (its breaker then refuses the call, unsent)."""
        count = len(self._replicas)
        start = self._next
        self._next = (self._next + 1) % count
        for offset in range(count):
            replica = self._replicas[(start + offset) % count]
            if replica[1].breaker.admits:
                self._next = (start + offset + 1) % count
                return replica
        return self._replicas[start]

    async def close(self) -> None:
        for channel, _ in self._replicas:
            await channel.close()


def _address(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"
