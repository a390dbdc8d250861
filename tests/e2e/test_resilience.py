"""A replica dies under traffic: it comes back, and no user request fails meanwhile."""

from __future__ import annotations

import signal
import threading

import httpx

from souk.testing import pid_alive


def test_killing_a_catalog_replica_loses_no_request(souk):
    before = souk.instance("catalog-1")
    results: list[tuple[int | str, str | None]] = []
    stop = threading.Event()

    def shopper() -> None:
        with httpx.Client(base_url=souk.gateway_url, timeout=10.0) as client:
            while not stop.is_set():
                try:
                    response = client.get("/api/catalog/products", params={"page_size": 5})
                    results.append((response.status_code, response.headers.get("x-souk-upstream")))
                except httpx.HTTPError as exc:
                    results.append((type(exc).__name__, None))

    shoppers = [threading.Thread(target=shopper) for _ in range(2)]
    for thread in shoppers:
        thread.start()
    try:
        souk.wait_until(lambda: len(results) >= 20, message="traffic flowing")
        killed = souk.kill("catalog-1", signal.SIGKILL)
        during = len(results)

        def restarted_and_ready():
            record = souk.instance("catalog-1")
            fresh = record.pid not in (None, killed) and record.restarts > before.restarts
            return record if fresh and record.state == "ready" else None

        restarted = souk.wait_until(restarted_and_ready, timeout=30, message="catalog-1 back")
        back = len(results)
        souk.wait_until(
            lambda: any(upstream == "catalog-1" for _, upstream in results[back:]),
            timeout=30,
            message="the restarted catalog-1 serving traffic again",
        )
    finally:
        stop.set()
        for thread in shoppers:
            thread.join(timeout=15)

    evidence = f"state: {souk.instance('catalog-1')}\nlog: {souk.log_tail('catalog-1', 15)}"
    assert not pid_alive(killed)
    assert restarted.port == before.port
    assert restarted.restarts == before.restarts + 1, evidence
    failures = [result for result in results if result[0] != 200]
    assert failures == [], f"{len(failures)} of {len(results)} failed: {failures[:5]}\n{evidence}"
    # While catalog-1 was down, catalog-2 took its share.
    assert "catalog-2" in {upstream for _, upstream in results[during:back]}
    assert len(results) - during > 10
