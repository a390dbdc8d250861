from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis.asyncio as redis

from gateway.app import create_app
from gateway.ratelimit import InMemoryTokenBuckets, RedisTokenBuckets
from gateway.settings import RateLimits, TokenBucket
from souk.testing import require_server
from souk.topology import default_topology_path, load_topology

REDIS_URL = "redis://127.0.0.1:6379/0"
# Slow enough that nothing refills while a test runs.
HARDLY_REFILLS = 0.001


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_bucket_lets_a_burst_through_then_refuses_until_it_refills():
    clock = FakeClock()
    buckets = InMemoryTokenBuckets(clock=clock)
    bucket = TokenBucket(rate=2, burst=3)
    draws = [await buckets.take("ip:203.0.113.7", bucket) for _ in range(4)]
    assert [d.allowed for d in draws] == [True, True, True, False]
    assert draws[-1].retry_after == pytest.approx(0.5)
    clock.now += 0.5
    assert (await buckets.take("ip:203.0.113.7", bucket)).allowed
    assert not (await buckets.take("ip:203.0.113.7", bucket)).allowed


async def test_a_bucket_never_holds_more_than_its_burst():
    clock = FakeClock()
    buckets = InMemoryTokenBuckets(clock=clock)
    bucket = TokenBucket(rate=10, burst=2)
    await buckets.take("client:storefront", bucket)
    clock.now += 3600
    draws = [(await buckets.take("client:storefront", bucket)).allowed for _ in range(3)]
    assert draws == [True, True, False]


async def test_the_in_memory_store_forgets_the_least_recently_used_buckets_beyond_its_size():
    buckets = InMemoryTokenBuckets(max_keys=2, clock=FakeClock())
    bucket = TokenBucket(rate=HARDLY_REFILLS, burst=1)
    for key in ("ip:a", "ip:b", "ip:a", "ip:c"):
        await buckets.take(key, bucket)
    # b was used least recently and forgotten: it starts full again; a is still empty.
    assert (await buckets.take("ip:b", bucket)).allowed
    assert not (await buckets.take("ip:c", bucket)).allowed


async def test_past_the_ip_limit_the_gateway_answers_429_with_retry_after(kit, upstreams):
    limits = RateLimits(per_ip=TokenBucket(rate=HARDLY_REFILLS, burst=2))
    async with kit.client(kit.settings(upstreams, rate_limits=limits)) as client:
        statuses = [(await client.get("/api/echo/x")).status_code for _ in range(2)]
        refused = await client.get("/api/echo/x")
    async with kit.client(kit.settings(upstreams, rate_limits=limits)) as client:
        other_ip = await client.get("/api/echo/x")
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "https://souk.dev/problems/rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    # A fresh gateway (own memory) has a fresh bucket: in memory, limits are per process.
    assert other_ip.status_code == 200


async def test_a_client_cannot_buy_a_fresh_ip_bucket_by_forging_x_forwarded_for(kit, upstreams):
    # Served as `souk up` serves it: uvicorn believes X-Forwarded-For only from the proxies
    # the settings name, and the gateway, being the edge, names none.
    port = kit.free_port()
    limits = RateLimits(per_ip=TokenBucket(rate=HARDLY_REFILLS, burst=1))
    settings = kit.settings(upstreams, rate_limits=limits, port=port)
    async with (
        kit.serving(create_app(settings), port, settings) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        answers = [
            await client.get("/api/echo/x", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            for n in (1, 2)
        ]
        seen_by_upstream = answers[0].json()["headers"].get("x-forwarded-for")
    assert [answer.status_code for answer in answers] == [200, 429]
    assert seen_by_upstream == "127.0.0.1"  # the real peer, not the forged address


async def test_each_client_id_has_a_bucket_of_its_own(kit, upstreams):
    validator = kit.FakeTokenValidator(
        {
            "web": kit.access_token("amira", "storefront"),
            "app": kit.access_token("amira", "mobile-app"),
        }
    )
    route = kit.Route(prefix="/api/echo", upstream="echo", auth="required")
    limits = RateLimits(per_client=TokenBucket(rate=HARDLY_REFILLS, burst=1))
    settings = kit.settings(upstreams, routes=[route], rate_limits=limits)
    async with kit.client(settings, token_validator=validator) as client:
        web = [
            (await client.get("/api/echo/x", headers={"authorization": "Bearer web"})).status_code
            for _ in range(2)
        ]
        app = await client.get("/api/echo/x", headers={"authorization": "Bearer app"})
    assert web == [200, 429]
    assert app.status_code == 200


async def test_each_customer_of_a_client_has_a_bucket_of_their_own(kit, upstreams):
    # Everybody signs in through the one public shop-front client: one customer's burst
    # must not lock the others out.
    validator = kit.FakeTokenValidator(
        {
            "amira": kit.access_token("amira", "souk-web", grant_id="g-1"),
            "amira-again": kit.access_token("amira", "souk-web", grant_id="g-2"),
            "omar": kit.access_token("omar", "souk-web", grant_id="g-3"),
        }
    )
    route = kit.Route(prefix="/api/echo", upstream="echo", auth="required")
    limits = RateLimits(per_client=TokenBucket(rate=HARDLY_REFILLS, burst=1))
    settings = kit.settings(upstreams, routes=[route], rate_limits=limits)
    async with kit.client(settings, token_validator=validator) as client:
        statuses = [
            (await client.get("/api/echo/x", headers={"authorization": f"Bearer {t}"})).status_code
            for t in ("amira", "amira-again", "omar")
        ]
    # A second sign-in of the same customer is the same customer: no fresh bucket.
    assert statuses == [200, 429, 200]


async def test_tokens_naming_no_client_share_their_subjects_bucket(kit, upstreams):
    validator = kit.FakeTokenValidator(
        {
            "first": kit.access_token("amira", None),
            "second": kit.access_token("amira", None),
            "other": kit.access_token("omar", None),
        }
    )
    route = kit.Route(prefix="/api/echo", upstream="echo", auth="required")
    limits = RateLimits(per_client=TokenBucket(rate=HARDLY_REFILLS, burst=1))
    settings = kit.settings(upstreams, routes=[route], rate_limits=limits)
    async with kit.client(settings, token_validator=validator) as client:
        statuses = [
            (await client.get("/api/echo/x", headers={"authorization": f"Bearer {t}"})).status_code
            for t in ("first", "second", "other")
        ]
    assert statuses == [200, 429, 200]


@pytest.fixture
async def redis_prefix():
    """A key prefix of this test's own in the real Redis, and its keys deleted afterwards."""
    require_server("Redis", "127.0.0.1", 6379)
    prefix = f"souk:test:gateway:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def redis_settings(kit, upstreams, prefix, bucket):
    limits = RateLimits(per_ip=bucket, key_prefix=prefix)
    return kit.settings(upstreams, rate_limits=limits, redis_url=REDIS_URL)


async def test_two_gateways_sharing_one_redis_share_one_limit(kit, upstreams, redis_prefix):
    bucket = TokenBucket(rate=HARDLY_REFILLS, burst=3)
    settings = redis_settings(kit, upstreams, redis_prefix, bucket)
    async with kit.client(settings) as first, kit.client(settings) as second:
        statuses = [
            (await gateway.get("/api/echo/x")).status_code
            for gateway in (first, second, first, second)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_the_shared_limit_holds_under_a_concurrent_burst(kit, upstreams, redis_prefix):
    bucket = TokenBucket(rate=HARDLY_REFILLS, burst=10)
    settings = redis_settings(kit, upstreams, redis_prefix, bucket)
    async with kit.client(settings) as first, kit.client(settings) as second:
        responses = await asyncio.gather(
            *(gateway.get("/api/echo/x") for gateway in [first, second] * 25)
        )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 40


async def test_a_bucket_in_redis_expires_once_it_would_be_full_again(redis_prefix):
    buckets = RedisTokenBuckets(REDIS_URL)
    try:
        await buckets.take(f"{redis_prefix}ip:a", TokenBucket(rate=4, burst=2))
        client = redis.Redis.from_url(REDIS_URL)
        ttl = await client.pttl(f"{redis_prefix}ip:a")
        await client.aclose()
    finally:
        await buckets.close()
    assert 0 < ttl <= 500


async def test_a_refused_draw_from_redis_says_when_a_token_is_back(redis_prefix):
    buckets = RedisTokenBuckets(REDIS_URL)
    bucket = TokenBucket(rate=0.25, burst=1)
    try:
        await buckets.take(f"{redis_prefix}ip:a", bucket)
        refused = await buckets.take(f"{redis_prefix}ip:a", bucket)
    finally:
        await buckets.close()
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(4, abs=0.1)


async def test_an_unreachable_redis_lets_requests_through(kit, upstreams):
    limits = RateLimits(per_ip=TokenBucket(rate=HARDLY_REFILLS, burst=1))
    nowhere = f"redis://127.0.0.1:{kit.free_port()}/0"
    async with kit.client(kit.settings(upstreams, rate_limits=limits, redis_url=nowhere)) as client:
        statuses = [(await client.get("/api/echo/x")).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


async def test_the_default_limits_are_on_per_ip(kit, upstreams):
    # No rate_limits given: the defaults (docs/security.md) hold. The clock stands still, so
    # nothing refills however slowly the machine answers.
    settings = kit.settings(upstreams)
    burst = settings.rate_limits.per_ip.burst
    buckets = InMemoryTokenBuckets(clock=FakeClock())
    async with kit.client(settings, buckets=buckets) as client:
        statuses = [(await client.get("/api/echo/x")).status_code for _ in range(burst + 5)]
    assert statuses == [200] * burst + [429] * 5


async def test_by_default_sign_up_sign_in_and_tokens_are_throttled_per_ip(kit, upstreams):
    routes = [
        kit.Route(prefix="/oauth", upstream="echo", strip_prefix=False),
        kit.Route(prefix="/api/users", upstream="echo"),
    ]
    settings = kit.settings(upstreams, routes=routes)
    burst = settings.rate_limits.per_ip_expensive.burst
    async with kit.client(settings, buckets=InMemoryTokenBuckets(clock=FakeClock())) as client:
        posts = [
            (await client.post(path, data={"a": "b"})).status_code
            for path in ["/oauth/token", "/api/users", "/oauth/authorize"] * (burst // 3 + 1)
        ]
        reads = [(await client.get("/oauth/authorize")).status_code for _ in range(5)]
    async with kit.client(
        settings, client_address="198.51.100.9", buckets=InMemoryTokenBuckets(clock=FakeClock())
    ) as other:
        elsewhere = (await other.post("/oauth/token")).status_code
    assert posts[:burst] == [200] * burst
    assert set(posts[burst:]) == {429}
    # Only the expensive calls (argon2id per call) have the tight bucket.
    assert reads == [200] * 5
    assert elsewhere == 200


def test_the_default_topology_keeps_the_limits_on():
    topology = load_topology(default_topology_path())
    env = topology.services["gateway"].env

    assert "GATEWAY_RATE_LIMITS" not in env
    limits = RateLimits()
    assert limits.per_ip is not None
    assert limits.per_client is not None
    assert limits.per_ip_expensive is not None
