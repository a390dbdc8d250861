"""What the mesh costs: prints `| name | value |` rows. Run `.venv/bin/python bench/mesh.py`.

- pair: an open loop at --rate req/s (default 1,000) for --seconds against a cheap endpoint,
  direct and through a sidecar pair (client -> caller's sidecar -> mTLS -> callee's sidecar
  -> app), in one run; p50/p99 of each, what the pair adds, and the CPU seconds both
  sidecars spent per 1,000 requests (from /proc). Latency is measured from each request's
  scheduled send time, so a stall counts against every request it delays.
- topology (unless --skip-topology): the default topology's boot time and total RSS with
  `mesh: off` and `mesh: on`.

Published figures of the same kind, for comparison: Istio 1.24 docs ("Performance and
Scalability"): a sidecar uses ~0.20 vCPU and 60 MB per 1,000 req/s, and a sidecar pair adds
~0.18 ms at p50 and ~0.25 ms at p90 (1 KB payloads, 16 connections, on dedicated cores).
Linkerd's 2021 benchmark (Kinvolk/Linkerd, "Linkerd vs Istio benchmarks") reports ~1-2 ms
p50 and single-digit ms p99 added at 2,000 req/s end to end through a whole demo app. On a
shared 2-core machine compare ratios and medians of one run, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import aiohttp
import yaml

# This file is bench/mesh.py: run as a script, its folder comes first on sys.path and would
# shadow the `mesh` package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from mesh.policy import Policy  # noqa: E402
from mesh.settings import MeshSettings  # noqa: E402
from mesh.testing import RunningSidecar, free_port, mesh_under_test, wait_until_ready  # noqa: E402
from mesh.traffic import TrafficSettings  # noqa: E402
from souk.testing import SoukSystem  # noqa: E402

APP = """
import sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def open_loop(url: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """Latencies (ms, from the scheduled send) of the requests answered 200, and errors."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                async with session.get(url) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append((time.perf_counter() - scheduled) * 1000)

        tasks = []
        start = time.perf_counter() + 0.05
        for index in range(int(rate * seconds)):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    return latencies, errors


def _open_loop_worker(job: tuple[str, float, float, float]) -> tuple[list[float], int]:
    url, rate, seconds, start_at = job
    return asyncio.run(_open_loop_from(url, rate, seconds, start_at))


async def _open_loop_from(
    url: str, rate: float, seconds: float, start_at: float
) -> tuple[list[float], int]:
    delay = start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    return await open_loop(url, rate, seconds)


def open_loop_processes(
    url: str, rate: float, seconds: float, workers: int
) -> tuple[list[float], int]:
    """The open loop split over ``workers`` processes (one Python client tops out well below
    1,000 req/s on a busy core), all starting at the same moment."""
    start_at = time.time() + 1.0
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(_open_loop_worker, [(url, rate / workers, seconds, start_at)] * workers)
    return [latency for part, _ in parts for latency in part], sum(e for _, e in parts)


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] if len(values) > 1 else 0.0


@contextlib.asynccontextmanager
async def cheap_app() -> AsyncIterator[int]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", APP, str(port))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/") as answer:
                        if answer.status == 200:
                            break
                await asyncio.sleep(0.05)
        yield port
    finally:
        process.terminate()
        await process.wait()


async def bench_pair(rate: float, seconds: float, workers: int) -> list[tuple[str, str]]:
    settings = MeshSettings(
        policy=Policy.parse({"catalog": {"allow": [{"from": ["bench"]}]}}),
        traffic=TrafficSettings(),
    )
    with tempfile.TemporaryDirectory(prefix="mesh-bench-", dir="/tmp") as directory:
        async with cheap_app() as port, mesh_under_test(Path(directory), settings) as mesh:
            callee = mesh.start_sidecar("catalog-1", "catalog", f"127.0.0.1:{port}")
            caller = mesh.start_sidecar(
                "bench-1", "bench", "127.0.0.1:1", outbound={"catalog": free_port()}
            )
            await asyncio.gather(
                wait_until_ready(callee, listeners=1), wait_until_ready(caller, listeners=2)
            )
            meshed_url = f"{caller.outbound_url('catalog')}/products"
            direct_url = f"http://127.0.0.1:{port}/products"
            await _until_ok(meshed_url)
            loop = asyncio.get_running_loop()

            def offered(url: str, length: float) -> asyncio.Future[tuple[list[float], int]]:
                return loop.run_in_executor(None, open_loop_processes, url, rate, length, workers)

            await offered(meshed_url, 1)  # warm: connections, certificates
            await offered(direct_url, 1)
            direct, direct_errors = await offered(direct_url, seconds)
            sidecars: list[RunningSidecar] = [caller, callee]
            before = sum(cpu_seconds(s.process.pid) for s in sidecars)
            meshed, meshed_errors = await offered(meshed_url, seconds)
            spent = sum(cpu_seconds(s.process.pid) for s in sidecars) - before
            refusals = await _refusals(caller)
            sidecar_rss = [rss_mb(s.process.pid) for s in sidecars]
    requests = len(meshed) + meshed_errors
    p50 = (quantile(direct, 0.5), quantile(meshed, 0.5))
    p99 = (quantile(direct, 0.99), quantile(meshed, 0.99))
    return [
        (
            f"mesh pair: offered rate, open loop ({seconds:g} s, {workers} client processes)",
            f"{rate:g} req/s; answered {len(direct) / seconds:.0f} / {len(meshed) / seconds:.0f}",
        ),
        ("mesh pair: p50 direct / through a sidecar pair", f"{p50[0]:.2f} / {p50[1]:.2f} ms"),
        ("mesh pair: p99 direct / through a sidecar pair", f"{p99[0]:.2f} / {p99[1]:.2f} ms"),
        ("mesh pair: added p50 / p99", f"{p50[1] - p50[0]:.2f} / {p99[1] - p99[0]:.2f} ms"),
        (
            "mesh pair: CPU of both sidecars per 1,000 requests",
            f"{spent / requests * 1000:.3f} CPU-s ({spent / seconds:.2f} vCPU at this rate)",
        ),
        ("mesh pair: errors direct / meshed", f"{direct_errors} / {meshed_errors}"),
        ("mesh pair: caller sidecar's refusals", refusals or "none"),
        ("mesh pair: sidecar RSS after the run", " / ".join(f"{m:.0f} MB" for m in sidecar_rss)),
    ]


async def _refusals(caller: RunningSidecar) -> str:
    """What the caller's sidecar answered itself: ejections, breaker overflows, timeouts."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{caller.admin}/stats?filter=cluster.catalog.") as answer,
    ):
        text = await answer.text()
    wanted = ("ejections_enforced_total", "overflow", "upstream_rq_timeout", "upstream_rq_503")
    return ", ".join(
        line.removeprefix("cluster.catalog.")
        for line in text.splitlines()
        if any(w in line for w in wanted) and not line.endswith(": 0")
    )


async def _until_ok(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} never answered 200")


def default_topology(mesh: bool) -> dict:
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    data.pop("data_dir", None)
    data["services"]["gateway"]["port"] = free_port()
    data["mesh"] = {"enabled": mesh}
    return data


def bench_topology() -> list[tuple[str, str]]:
    rows = []
    for mesh in (False, True):
        with tempfile.TemporaryDirectory(prefix="mesh-boot-", dir="/tmp") as directory:
            started = time.monotonic()
            system = SoukSystem(default_topology(mesh), directory, ready_timeout=120)
            system.start()
            try:
                boot = time.monotonic() - started
                time.sleep(3)  # settle: first health checks, first pushes
                records = system.state().instances
                pids = [r.pid for r in records if r.pid]
                total = sum(rss_mb(pid) for pid in pids)
                sidecars = [r.pid for r in records if r.pid and "-sidecar-" in r.instance]
                label = "on" if mesh else "off"
                rows.append((f"default topology, mesh {label}: boot until ready", f"{boot:.1f} s"))
                rows.append(
                    (
                        f"default topology, mesh {label}: RSS of every process",
                        f"{total:.0f} MB in {len(pids)} processes",
                    )
                )
                if sidecars:
                    per = [rss_mb(pid) for pid in sidecars]
                    rows.append(
                        (
                            "default topology, mesh on: RSS per sidecar (median)",
                            f"{statistics.median(per):.0f} MB x {len(per)}",
                        )
                    )
            finally:
                # A busy machine stops 14 (or 29) processes tier by tier slowly.
                system.stop(timeout=120)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=4, help="load generator processes")
    parser.add_argument("--skip-topology", action="store_true")
    parser.add_argument("--skip-pair", action="store_true")
    arguments = parser.parse_args()
    print("| name | value |", flush=True)
    print("|---|---|", flush=True)
    rows = []
    if not arguments.skip_pair:
        rows += asyncio.run(bench_pair(arguments.rate, arguments.seconds, arguments.workers))
        _print(rows)
    if not arguments.skip_topology:
        _print(bench_topology())


def _print(rows: list[tuple[str, str]]) -> None:
    for name, value in rows:
        print(f"| {name} | {value} |", flush=True)


if __name__ == "__main__":
    main()
