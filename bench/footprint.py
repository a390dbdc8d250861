"""Footprint benchmark: what the default topology costs at rest. Prints one table.

Run with `.venv/bin/python bench/footprint.py`. It boots `souk up`'s default topology (SQLite
files, the embedded broker) in a scratch directory twice: first on a fresh data directory
(migrations, seeding, a cold start), then again on the same one after stopping it ("warm":
what a developer sees on their second `souk up`). Then, after `--settle` seconds, it measures
over `--idle` seconds:

- boot: seconds from starting `souk up` to its "Souk is up" line;
- idle CPU: the CPU time of `souk up` and every instance over the idle window, as a share of
  one core;
- memory: the resident set (RSS) of those processes summed, and their proportional set (PSS,
  which shares each shared page among its users, so the sum is what the machine really
  gives them).

Absolute numbers drift on shared machines; compare runs of one machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from souk.testing import SoukSystem, free_port

READY_LINE = b"Souk is up"
TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def topology() -> dict[str, Any]:
    """The default topology with the gateway and the console on free ports."""
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    data.pop("data_dir", None)
    # A developer's own `souk up` (or another bench) may hold the usual ports.
    for service in ("gateway", "console"):
        if service in data["services"]:
            data["services"][service]["port"] = free_port()
    return data


def progress(line: str) -> None:
    """Show ``line`` on stderr, leaving stdout to the table."""
    print(line, file=sys.stderr, flush=True)


def booted(system: SoukSystem, began: float) -> float:
    """Seconds from ``began`` until the started ``system``'s `souk up` said that Souk is up."""
    while READY_LINE not in system.output_path.read_bytes():
        if time.perf_counter() - began > system.ready_timeout + 30:
            raise RuntimeError(f"no {READY_LINE!r} line:\n{system.output()}")
        time.sleep(0.01)
    return time.perf_counter() - began


def pids(system: SoukSystem) -> dict[str, int]:
    """`souk up` and every instance it runs, by name."""
    instances = {r.instance: r.pid for r in system.state().instances if r.pid}
    return {"souk up": system.orchestrator_pid, **instances}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kb(pid: int, field: str, source: str) -> int:
    """``field`` (e.g. ``Rss``) in kB from ``/proc/<pid>/<source>`` (0 if gone)."""
    try:
        lines = Path(f"/proc/{pid}/{source}").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    return 0


def main() -> None:
    """Boot twice, idle, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle measured")
    parser.add_argument(
        "--ready-timeout", type=float, default=60.0, help="seconds an instance may take to boot"
    )
    parser.add_argument(
        "--per-process",
        action="store_true",
        help="also print each process's idle CPU and memory (where to look first)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="souk-bench-") as directory:
        shape = topology()
        progress("booting the default topology on a fresh data directory…")
        began = time.perf_counter()
        with SoukSystem(
            shape, Path(directory), ready_timeout=args.ready_timeout, grace=30
        ) as system:
            first = booted(system, began)
        progress("booting it again on the same data directory (warm)…")
        began = time.perf_counter()
        with SoukSystem(
            shape, Path(directory), ready_timeout=args.ready_timeout, grace=30
        ) as system:
            warm = booted(system, began)
            progress(f"idle: settling {args.settle:g} s, measuring {args.idle:g} s…")
            time.sleep(args.settle)
            processes = pids(system)
            before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            time.sleep(args.idle)
            each = {
                name: (
                    (cpu_seconds(pid) - before[name]) / args.idle,
                    memory_kb(pid, "VmRSS", "status") / 1024,
                    memory_kb(pid, "Pss", "smaps_rollup") / 1024,
                )
                for name, pid in processes.items()
            }
    idle_cpu = sum(cpu for cpu, _, _ in each.values())
    rss = sum(rss for _, rss, _ in each.values())
    pss = sum(pss for _, _, pss in each.values())
    rows = [
        ('boot to "Souk is up", fresh data dir', f"{first:.1f} s"),
        ('boot to "Souk is up", warm', f"{warm:.1f} s"),
        ("idle CPU, all processes", f"{idle_cpu * 100:.1f} % of one core"),
        ("RSS, all processes", f"{rss:,.0f} MB ({len(processes)} processes)"),
        ("PSS, all processes", f"{pss:,.0f} MB"),
    ]
    title = "footprint, souk up defaults"
    width = max(len(name) for name, _ in [*rows, (title, "")])
    print(f"| {title.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    if args.per_process:
        print()
        print("| process | idle CPU, % of one core | RSS MB | PSS MB |")
        print("|---|---|---|---|")
        for name, (cpu, resident, proportional) in sorted(each.items(), key=lambda i: -i[1][0]):
            print(f"| {name} | {cpu * 100:.2f} | {resident:,.0f} | {proportional:,.0f} |")


if __name__ == "__main__":
    main()
