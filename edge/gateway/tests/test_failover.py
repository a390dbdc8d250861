from __future__ import annotations


async def test_a_refusing_instance_is_skipped_and_every_request_succeeds(kit, upstreams):
    dead = f"http://127.0.0.1:{kit.free_port()}"
    async with kit.client(kit.settings([dead, *upstreams])) as client:
        responses = [await client.get("/api/echo/x") for _ in range(9)]
    assert [r.status_code for r in responses] == [200] * 9
    assert {r.headers["x-souk-upstream"] for r in responses} == {"echo-1", "echo-2"}


async def test_a_refusing_instance_is_ejected_so_later_requests_do_not_try_it_first(kit, upstreams):
    dead = f"http://127.0.0.1:{kit.free_port()}"
    settings = kit.settings([dead, *upstreams], eject_seconds=60)
    async with kit.client(settings) as client:
        await client.get("/api/echo/x")
        balancer = client._transport.app.state.proxy.balancers["echo"]  # type: ignore[attr-defined]
        assert balancer.is_ejected(dead)
        assert all(balancer.candidates()[-1] == dead for _ in range(4))


async def test_no_reachable_instance_gives_503_problem_with_retry_after(kit):
    dead = [f"http://127.0.0.1:{kit.free_port()}", f"http://127.0.0.1:{kit.free_port()}"]
    async with kit.client(kit.settings(dead)) as client:
        response = await client.get("/api/echo/x")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "https://souk.dev/problems/upstream-unavailable"


async def test_a_slow_upstream_gives_504_after_the_route_timeout(kit, upstreams):
    settings = kit.settings(
        upstreams, routes=[kit.Route(prefix="/api/echo", upstream="echo", timeout=0.3)]
    )
    async with kit.client(settings) as client:
        response = await client.get("/api/echo/slow?seconds=3")
    assert response.status_code == 504
    assert response.json()["type"] == "https://souk.dev/problems/upstream-timeout"


async def test_an_instance_that_comes_back_takes_traffic_again(kit, upstreams):
    port = kit.free_port()
    revived = f"http://127.0.0.1:{port}"

    settings = kit.settings([revived, upstreams[0]], eject_seconds=0)
    async with kit.client(settings) as client:
        before = {(await client.get("/api/echo/x")).headers["x-souk-upstream"] for _ in range(4)}
        async with kit.serving(kit.echo_app("echo-revived"), port):
            after = {(await client.get("/api/echo/x")).headers["x-souk-upstream"] for _ in range(4)}
    assert before == {"echo-1"}
    assert after == {"echo-1", "echo-revived"}


async def test_a_dropped_post_is_not_repeated_on_another_instance(kit, upstreams):
    async with kit.dropping_server() as dropper:
        settings = kit.settings([dropper, upstreams[0]])
        async with kit.client(settings) as client:
            response = await client.post("/api/echo/orders", json={"sku": "SPC-1"})
    assert response.status_code == 502
    assert response.json()["type"] == "https://souk.dev/problems/upstream-failed"


async def test_a_dropped_get_is_retried_on_the_next_instance(kit, upstreams):
    async with kit.dropping_server() as dropper:
        settings = kit.settings([dropper, upstreams[0]])
        async with kit.client(settings) as client:
            response = await client.get("/api/echo/products")
    assert response.status_code == 200
    assert response.headers["x-souk-upstream"] == "echo-1"


HALF_AN_ANSWER = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"items": ['


async def test_an_instance_dying_mid_answer_is_retried_for_a_get(kit, upstreams):
    async with kit.dropping_server(HALF_AN_ANSWER) as dying:
        settings = kit.settings([dying, upstreams[0]])
        async with kit.client(settings) as client:
            response = await client.get("/api/echo/products")
    assert response.status_code == 200
    assert response.json()["instance"] == "echo-1"


async def test_an_instance_dying_mid_answer_to_a_post_is_a_502_not_a_truncated_body(kit, upstreams):
    async with kit.dropping_server(HALF_AN_ANSWER) as dying:
        settings = kit.settings([dying, upstreams[0]])
        async with kit.client(settings) as client:
            response = await client.post("/api/echo/orders", json={"sku": "SPC-1"})
    assert response.status_code == 502
    assert response.json()["type"] == "https://souk.dev/problems/upstream-failed"
