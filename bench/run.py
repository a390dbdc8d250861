"""Souk benchmarks: one table with every ratio of issue 12. `.venv/bin/python bench/run.py`.

Each figure is compared with its reference measured in the same run, with the same client
(wrk, 1 thread, 32 connections), in interleaved rounds (median shown), so the ratios hold on
a shared, noisy machine even though the absolute numbers drift:

- service: GET /products/{id}, /categories and /products?page_size=20 on one catalog
  replica against that process's /healthz, and /healthz against a bare Starlette app served
  the same way (uvicorn, uvloop, httptools); on SQLite (the default) and on PostgreSQL;
- edge: the gateway against nginx (Debian's, 1 worker, keepalive pool) over both catalog
  replicas and over a fixed-answer upstream, a route checking a bearer token (and the
  per-client rate limit) against a public one, and the latency each proxy adds at one
  connection;
- footprint, bus, checkout: the rows ``bench/footprint.py``, ``bench/messaging.py`` and
  ``bench/checkout.py`` print (run as they are, their ``| name | value |`` rows folded in).

``--quick`` runs every HTTP measure once for 2 s and the other benches small: about 2
minutes.
wrk and nginx are bench tools only (``apt-get install wrk nginx``); without them the rows
that need them say so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CONNECTIONS = 32
ROUNDS = 3
WRK = shutil.which("wrk") or "wrk"
ISSUER = "http://bench.issuer"
PARTS = ["service", "edge", "postgres", "footprint", "messaging", "checkout"]


@dataclass
class Load:
    """What wrk measured on one URL."""

    rate: float
    p50_ms: float
    p99_ms: float
    errors: int

    def cell(self) -> str:
        return f"{self.rate:,.0f} req/s  p50 {self.p50_ms:.2f} ms  p99 {self.p99_ms:.1f} ms"


Row = tuple[str, str, str]


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:  # wrk writes -nan when it saw too few answers
        return math.nan
    number, unit = match.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, seconds: float, *, connections: int = CONNECTIONS, header: str = "") -> Load:
    """Load ``url`` with wrk for ``seconds`` and read its report."""
    extra = ["-H", header] if header else []
    out = subprocess.run(  # noqa: S603 - wrk, on local URLs
        [WRK, "-t1", f"-c{connections}", *extra, "--latency", f"-d{round(seconds)}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(bad.group(1)) if bad else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return Load(rate, p50, p99, errors)


@dataclass(frozen=True)
class Target:
    url: str
    connections: int = CONNECTIONS
    header: str = ""


def measure(targets: dict[str, Target], seconds: float, rounds: int) -> dict[str, Load]:
    """Each target warmed, then loaded ``rounds`` times in turn; the median round of each.

    Interleaving the rounds spreads the other sessions' bursts over every target alike.
    """
    runs: dict[str, list[Load]] = {name: [] for name in targets}
    for target in targets.values():
        wrk(target.url, 1, connections=target.connections, header=target.header)
    for _ in range(rounds):
        for name, target in targets.items():
            load = wrk(target.url, seconds, connections=target.connections, header=target.header)
            runs[name].append(load)
    return {
        name: sorted(loads, key=lambda load: load.rate)[len(loads) // 2]
        for name, loads in runs.items()
    }


class Processes:
    """The processes a bench started, stopped (by their own pid) when it ends."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - argv built by this bench
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.started.clear()


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.2)


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local
        return json.loads(response.read())


def start_catalog(procs: Processes, name: str, data_dir: Path, database_url: str = "") -> str:
    port = free_port()
    env = {
        "CATALOG_PORT": str(port),
        "CATALOG_INSTANCE": name,
        "CATALOG_DATA_DIR": str(data_dir),
    }
    if database_url:
        env["CATALOG_DATABASE_URL"] = database_url
    procs.start(name, [PYTHON, "-m", "catalog"], env)
    return f"http://127.0.0.1:{port}"


def service_rows(
    label: str, catalog: str, seconds: float, hellos: dict[str, str] | None
) -> list[Row]:
    """Bare hellos (if given), /healthz, one product, categories and a page of 20, same run."""
    wait_ready(f"{catalog}/readyz")
    page = get_json(f"{catalog}/products?page_size=1")
    product_id = page["items"][0]["id"]  # type: ignore[index]
    targets = {name: Target(f"{url}/healthz") for name, url in (hellos or {}).items()}
    targets["healthz"] = Target(f"{catalog}/healthz")
    targets["product"] = Target(f"{catalog}/products/{product_id}")
    targets["categories"] = Target(f"{catalog}/categories")
    targets["list"] = Target(f"{catalog}/products?page_size=20")
    loads = measure(targets, seconds, ROUNDS)
    progress(f"service on {label}: done")
    rows: list[Row] = []
    if hellos:
        rows.append(("bare Starlette hello (uvicorn)", loads["hello"].cell(), ""))
        rows.append(("bare FastAPI hello (uvicorn)", loads["fastapi"].cell(), ""))
    rows += [
        (f"catalog /healthz [{label}]", loads["healthz"].cell(), ""),
        (f"GET /products/{{id}} [{label}]", loads["product"].cell(), ""),
        (f"GET /categories [{label}]", loads["categories"].cell(), ""),
        (f"GET /products?page_size=20 [{label}]", loads["list"].cell(), ""),
    ]
    if hellos:
        rows.append(
            (
                "  /healthz ÷ bare Starlette hello",
                ratio(loads["healthz"].rate, loads["hello"].rate),
                "target ≥ 0.5",
            )
        )
        rows.append(
            (
                "  bare FastAPI ÷ bare Starlette; /healthz ÷ bare FastAPI",
                f"{ratio(loads['fastapi'].rate, loads['hello'].rate)}; "
                f"{ratio(loads['healthz'].rate, loads['fastapi'].rate)}",
                "",
            )
        )
    product = loads["product"].rate
    rows += [
        (f"  product ÷ /healthz [{label}]", ratio(product, loads["healthz"].rate), "≥ 0.6"),
        (
            f"  categories, list ÷ product [{label}]",
            f"{ratio(loads['categories'].rate, product)}, {ratio(loads['list'].rate, product)}",
            "≥ 0.5 (within 2x)",
        ),
    ]
    errors = sum(load.errors for load in loads.values())
    if errors:
        rows.append((f"  errors [{label}]", str(errors), "should be 0"))
    return rows


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  fastcgi_temp_path {dir}/nginx-fastcgi;
  uwsgi_temp_path {dir}/nginx-uwsgi;
  scgi_temp_path {dir}/nginx-scgi;
  upstream catalog {{ {catalog} keepalive 64; }}
  upstream fixed {{ {fixed} keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location /api/catalog/ {{
      proxy_pass http://catalog/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
    location /api/fixed/ {{
      proxy_pass http://fixed/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def _servers(urls: list[str]) -> str:
    return " ".join(f"server {url.removeprefix('http://')};" for url in urls)


def signed_token_and_jwks() -> tuple[str, str]:
    """An access token signed with a fresh P-256 key (as identity signs), and its key set."""
    from joserfc import jwt  # noqa: PLC0415
    from joserfc.jwk import ECKey  # noqa: PLC0415

    key = ECKey.generate_key("P-256", parameters={"kid": "bench"})
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "souk",
        "sub": "bench-client",
        "client_id": "bench-client",
        "scope": "bench",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    token = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "bench"}, claims, key)
    jwks = json.dumps({"keys": [key.as_dict(private=False)]})
    return token, jwks


def start_proxies(procs: Processes, catalogs: list[str], jwks: str) -> tuple[str, str, str | None]:
    """The fixed-answer upstream, the gateway and nginx (if installed): their base URLs."""
    fixed_port = free_port()
    fixed = f"http://127.0.0.1:{fixed_port}"
    procs.start("fixed", [PYTHON, "bench/upstreams.py", "fixed", str(fixed_port), jwks])
    gateway_port = free_port()
    unlimited = {"rate": 1e9, "burst": 1_000_000_000}
    procs.start(
        "gateway",
        [PYTHON, "-m", "gateway"],
        {
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_INSTANCE": "gateway-bench",
            "GATEWAY_AUTH_ISSUER": ISSUER,
            "GATEWAY_UPSTREAMS": json.dumps(
                {"catalog": catalogs, "fixed": [fixed], "identity": [fixed]}
            ),
            "GATEWAY_ROUTES": json.dumps(
                [
                    {"prefix": "/api/catalog", "upstream": "catalog"},
                    {"prefix": "/api/fixed", "upstream": "fixed"},
                    {"prefix": "/api/guarded", "upstream": "fixed", "auth": "required"},
                ]
            ),
            # Limits on but never reached: their cost is measured, not their refusals.
            "GATEWAY_RATE_LIMITS": json.dumps({"per_ip": unlimited, "per_client": unlimited}),
        },
    )
    gateway = f"http://127.0.0.1:{gateway_port}"
    nginx_binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    nginx = None
    if nginx_binary:
        nginx_port = free_port()
        conf = procs.directory / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                dir=procs.directory,
                port=nginx_port,
                catalog=_servers(catalogs),
                fixed=_servers([fixed]),
            )
        )
        procs.start("nginx", [nginx_binary, "-c", str(conf), "-p", str(procs.directory)])
        nginx = f"http://127.0.0.1:{nginx_port}"
    return fixed, gateway, nginx


def edge_rows(procs: Processes, catalogs: list[str], seconds: float) -> list[Row]:
    """nginx and the gateway over the catalog replicas and over a fixed-answer upstream."""
    token, jwks = signed_token_and_jwks()
    fixed, gateway, nginx = start_proxies(procs, catalogs, jwks)
    rows: list[Row] = []
    wait_ready(f"{fixed}/healthz")
    wait_ready(f"{gateway}/readyz")
    product_id = get_json(f"{catalogs[0]}/products?page_size=1")["items"][0]["id"]  # type: ignore[index]
    path = f"/products/{product_id}"

    targets = {"catalog direct (1 replica)": Target(f"{catalogs[0]}{path}")}
    if nginx:
        wait_ready(f"{nginx}/api/fixed/healthz")
        targets["nginx → 2 catalogs"] = Target(f"{nginx}/api/catalog{path}")
    targets["gateway → 2 catalogs"] = Target(f"{gateway}/api/catalog{path}")
    targets["fixed upstream direct"] = Target(f"{fixed}{path}")
    if nginx:
        targets["nginx → fixed"] = Target(f"{nginx}/api/fixed{path}")
    targets["gateway → fixed, public route"] = Target(f"{gateway}/api/fixed{path}")
    targets["gateway → fixed, token + rate limit"] = Target(
        f"{gateway}/api/guarded{path}", header=f"Authorization: Bearer {token}"
    )
    loads = measure(targets, seconds, ROUNDS)
    singles = {"fixed direct": Target(f"{fixed}{path}", connections=1)}
    if nginx:
        singles["nginx"] = Target(f"{nginx}/api/fixed{path}", connections=1)
    singles["gateway"] = Target(f"{gateway}/api/fixed{path}", connections=1)
    one = measure(singles, seconds, ROUNDS)
    progress("edge: done")

    rows += [(name, load.cell(), "") for name, load in loads.items()]
    gateway_catalog = loads["gateway → 2 catalogs"].rate
    gateway_fixed = loads["gateway → fixed, public route"].rate
    if nginx:
        rows.append(
            (
                "  gateway ÷ nginx over catalog",
                ratio(gateway_catalog, loads["nginx → 2 catalogs"].rate),
                "target ≥ 0.6",
            )
        )
        rows.append(
            (
                "  gateway ÷ nginx over fixed upstream",
                ratio(gateway_fixed, loads["nginx → fixed"].rate),
                "target ≥ 0.6",
            )
        )
    else:
        rows.append(("  gateway ÷ nginx", "nginx not installed", "apt-get install nginx"))
    guarded = loads["gateway → fixed, token + rate limit"].rate
    rows.append(
        (
            "  token + rate limit cost (1 - guarded ÷ public)",
            f"{1 - guarded / gateway_fixed:.0%}" if gateway_fixed else "no answers",
            "target ≤ 25 %",
        )
    )
    base = one["fixed direct"].p50_ms
    added = ", ".join(
        f"{name} +{load.p50_ms - base:.2f} ms"
        for name, load in one.items()
        if name != "fixed direct"
    )
    rows.append(("  latency added at 1 connection (p50)", added, ""))
    errors = sum(load.errors for load in [*loads.values(), *one.values()])
    if errors:
        rows.append(("  errors (edge)", str(errors), "should be 0"))
    return rows


@contextlib.contextmanager
def postgres_database() -> Iterator[str | None]:
    """A scratch PostgreSQL database for the catalog, or None when no server answers."""
    import asyncio  # noqa: PLC0415

    try:
        import asyncpg  # noqa: PLC0415
    except ImportError:
        yield None
        return
    name = f"souk_bench_catalog_{uuid.uuid4().hex[:8]}"
    admin_url = "postgresql://postgres@127.0.0.1:5432/postgres"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(admin_url, timeout=3)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError):
        yield None
        return
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def other_bench_rows(script: str, args: list[str], timeout: float) -> list[Row]:
    """The ``| name | value |`` rows another bench prints, under its name."""
    started = time.monotonic()
    try:
        result = subprocess.run(  # noqa: S603 - our own bench
            [PYTHON, f"bench/{script}", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [(script, f"gave no answer within {timeout:.0f} s", "")]
    rows: list[Row] = []
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set("".join(cells)) <= set("-: "):
            continue
        if len(cells) >= 2 and cells[1] in {"value", "values"}:
            continue  # a table's header line
        rows.append((f"{script}: {cells[0]}", "  ".join(cells[1:]), ""))
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        rows.append((script, f"exit {result.returncode}: {tail[:80]}", ""))
    progress(f"{script}: done in {time.monotonic() - started:.0f} s")
    return rows


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "no answers to compare with"


def machine() -> str:
    load = os.getloadavg()[0]
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores "
        f"({cpu}), load average {load:.1f} at start, Python {platform.python_version()}"
    )


def print_table(rows: list[Row], title: str) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    print(f"\n{title}\n")
    print(f"| {'measure'.ljust(widths[0])} | {'figure'.ljust(widths[1])} | target |")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|--------|")
    for name, figure, target in rows:
        print(f"| {name.ljust(widths[0])} | {figure.ljust(widths[1])} | {target} |")


def http_rows(parts: set[str], seconds: float) -> list[Row]:
    """The service, edge and PostgreSQL measures, with every process stopped afterwards."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="souk-bench-") as directory:
        procs = Processes(Path(directory))
        try:
            if parts & {"service", "edge"}:
                data = Path(directory) / "data"
                catalogs = [start_catalog(procs, f"catalog-{n}", data) for n in (1, 2)]
                hellos = {}
                for name in ("hello", "fastapi"):
                    port = free_port()
                    procs.start(name, [PYTHON, "bench/upstreams.py", name, str(port)])
                    hellos[name] = f"http://127.0.0.1:{port}"
                    wait_ready(f"{hellos[name]}/healthz")
                for catalog in catalogs:
                    wait_ready(f"{catalog}/readyz")
                if "service" in parts:
                    rows += service_rows("SQLite", catalogs[0], seconds, hellos)
                if "edge" in parts:
                    rows += edge_rows(procs, catalogs, seconds)
                procs.stop()
            if "postgres" in parts:
                with postgres_database() as url:
                    if url is None:
                        rows.append(("PostgreSQL", "skipped: no server on 127.0.0.1:5432", ""))
                    else:
                        catalog = start_catalog(procs, "catalog-pg", Path(directory), url)
                        try:
                            rows += service_rows("PostgreSQL", catalog, seconds, None)
                        finally:
                            procs.stop()
        finally:
            procs.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: under 2 minutes")
    parser.add_argument("--seconds", type=int, help="seconds of load per HTTP measure")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=PARTS,
        help="run only these parts",
    )
    args = parser.parse_args()
    seconds = args.seconds or (2 if args.quick else 5)
    global ROUNDS  # noqa: PLW0603 - one setting for every measure of the run
    ROUNDS = 1 if args.quick else 3
    parts = set(args.only or PARTS)
    header = machine()
    rows: list[Row] = []
    if shutil.which("wrk") is None:
        rows.append(("HTTP measures", "skipped: wrk is not installed", "apt-get install wrk"))
        parts -= {"service", "edge", "postgres"}
    rows += http_rows(parts, seconds)
    if "footprint" in parts:
        quick = ["--settle", "2", "--idle", "5"]
        rows += other_bench_rows("footprint.py", quick if args.quick else [], 900)
    if "messaging" in parts:
        quick = ["--events", "300", "--repeat", "1", "--backends", "embedded"]
        rows += other_bench_rows("messaging.py", quick if args.quick else [], 900)
    if "checkout" in parts:
        quick = ["--orders", "20", "--warmup", "5"]
        rows += other_bench_rows("checkout.py", quick if args.quick else [], 900)
    print_table(
        rows,
        f"Souk benchmarks — {header}; wrk -t1 -c{CONNECTIONS}, median of {ROUNDS} interleaved "
        f"rounds of {seconds:g} s",
    )


if __name__ == "__main__":
    main()
