"""Rate limits at the edge: a token bucket per client IP and per OAuth client id.

Buckets live in this process by default, or in Redis so that every gateway replica draws
from the same bucket. Not the ``limits`` library: it offers fixed, moving and sliding
windows but no token bucket (a steady rate plus a separate burst), which is a short Lua
script that Redis runs atomically.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from chassis import ProblemError, get_logger

if TYPE_CHECKING:
    from chassis.auth import AccessToken
    from gateway.settings import RateLimits, TokenBucket

_log = get_logger("gateway.ratelimit")


@dataclass(frozen=True)
class Draw:
    """The outcome of taking a token: allowed, or how many seconds until one is back."""

    allowed: bool
    retry_after: float = 0.0


class TokenBuckets(Protocol):
    """Where the buckets are kept; ``take`` must be atomic across everyone sharing them."""

    async def take(self, key: str, bucket: TokenBucket) -> Draw:
        """Take one token from the bucket under ``key``, filled as ``bucket`` says."""
        ...

    async def close(self) -> None:
        """Release connections, if any."""
        ...


class InMemoryTokenBuckets:
    """Buckets in this process: one gateway's limit, forgotten on restart.

    Only the ``max_keys`` most recently used buckets are kept, so a flood of new IPs cannot
    exhaust memory; a forgotten bucket starts full again, as an idle one would have.
    """

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens left, when counted); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, bucket: TokenBucket) -> Draw:
        # No await between reading and writing: atomic on the event loop.
        now = self._clock()
        tokens, counted = self._buckets.pop(key, (float(bucket.burst), now))
        tokens = min(float(bucket.burst), tokens + max(0.0, now - counted) * bucket.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return Draw(True) if allowed else Draw(False, (1 - tokens) / bucket.rate)

    async def close(self) -> None:
        """Nothing to release."""


# KEYS[1]: the bucket. ARGV: rate (tokens a second), burst. Redis's clock, not the
# replicas', so that gateways on different machines agree on how much has refilled.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'counted')
local tokens = tonumber(state[1]) or burst
local counted = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - counted) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'counted', tostring(now))
-- Once full again the bucket is the same as no bucket: let Redis forget it.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000))
return {allowed, tostring((1 - tokens) / rate)}
"""


class RedisTokenBuckets:
    """Buckets in Redis, shared by every gateway that uses the same Redis and key prefix.

    If Redis cannot be reached the request is let through (and a warning logged): a
    rate limiter that fails closed would turn a Redis outage into an outage of the API.
    """

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._take = self._redis.register_script(_TAKE)

    async def take(self, key: str, bucket: TokenBucket) -> Draw:
        try:
            allowed, retry_after = await self._take(keys=[key], args=[bucket.rate, bucket.burst])
        except (RedisError, OSError) as exc:
            _log.warning(
                "rate limit store unreachable: letting the request through", error=str(exc)
            )
            return Draw(True)
        return Draw(True) if int(allowed) == 1 else Draw(False, float(retry_after))

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    """Applies the configured limits; past one, a 429 problem with ``Retry-After``."""

    def __init__(self, limits: RateLimits, buckets: TokenBuckets) -> None:
        self.limits = limits
        self.buckets = buckets

    async def check_ip(self, ip: str) -> None:
        """Take a token for a request from ``ip``."""
        if self.limits.per_ip is not None:
            await self._check(f"ip:{ip}", self.limits.per_ip, f"this address ({ip})")

    async def check_expensive(self, method: str, path: str, ip: str) -> None:
        """Take a token from ``ip``'s bucket of expensive calls, if this is one."""
        bucket = self.limits.per_ip_expensive
        if bucket is None or method != "POST":
            return
        if any(path == prefix or path.startswith(prefix + "/") for prefix in self.limits.expensive):
            await self._check(f"expensive:{ip}", bucket, f"this address ({ip})")

    async def check_client(self, token: AccessToken) -> None:
        """Take a token for a request made with ``token``, from its OAuth client's bucket.

        A client acting for itself (client credentials) has one bucket. A token a customer
        signed in for (it names its grant) draws from that customer's bucket within the
        client: every customer of the shop front uses the same public client, and one of
        them must not use up everybody's limit.
        """
        if self.limits.per_client is None:
            return
        # A token naming no client (not one identity issues) still gets a bucket: its subject's.
        if token.client_id is None:
            key = f"subject:{token.subject}"
        elif token.grant_id is not None:
            key = f"client:{token.client_id}:subject:{token.subject}"
        else:
            key = f"client:{token.client_id}"
        await self._check(key, self.limits.per_client, "this client")

    async def _check(self, key: str, bucket: TokenBucket, who: str) -> None:
        draw = await self.buckets.take(self.limits.key_prefix + key, bucket)
        if draw.allowed:
            return
        # Whole seconds (RFC 9110 §10.2.3), rounded up so a client that waits is let in.
        seconds = max(1, math.ceil(draw.retry_after))
        raise ProblemError(
            429,
            "rate-limited",
            "Too Many Requests",
            f"Too many requests from {who}; retry in {seconds}s",
            headers={"Retry-After": str(seconds)},
        )


def token_buckets(redis_url: str | None) -> TokenBuckets:
    """Buckets in Redis when a URL is configured, else in this process."""
    return RedisTokenBuckets(redis_url) if redis_url else InMemoryTokenBuckets()
