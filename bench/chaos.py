"""A chaos run's figures: `souk chaos` against a system of its own. Prints the table.

Run with `.venv/bin/python bench/chaos.py` (by default `freeze-primary-provider --burst
130`: the primary payment provider SIGSTOP'd for 20 s while 130 checkouts go through).
Any other arguments are `souk chaos`'s, e.g. `bench/chaos.py kill-gateway --burst 60`.

It boots the default topology (SQLite files, the embedded broker) in a scratch directory
with the gateway and the console on free ports and the edge's rate limits lifted (one
client at 127.0.0.1 placing every order would otherwise measure the limiter), runs the
command, prints its table and `checkout_latency_seconds` (the *p99 checkout* column:
first send to the order seen terminal), and the load average before and after. The
invariants are asserted by tests/e2e/test_chaos.py; the latency is only reported here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from checkout import topology

from souk.testing import SoukSystem, free_port

DEFAULT = ["freeze-primary-provider", "--burst", "130"]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    arguments = sys.argv[1:] or DEFAULT
    shape = topology()
    shape["services"]["console"]["port"] = free_port()
    with tempfile.TemporaryDirectory(prefix="souk-chaos-bench-") as directory:
        print("booting the default topology…", file=sys.stderr)
        system = SoukSystem(shape, Path(directory), ready_timeout=120)
        system.start()
        try:
            print(f"before: {load()}")
            ran = system.souk("chaos", *arguments, "--json", timeout=3600)
            print(f"after: {load()}")
            sys.stderr.write(ran.stderr)
            if ran.returncode not in (0, 1) or not ran.stdout.strip():
                raise SystemExit(f"souk chaos exited with {ran.returncode}")
            for outcome in json.loads(ran.stdout):
                print(f"\n{outcome['scenario']}: {outcome['fault']}")
                for name, check in outcome["checks"].items():
                    print(f"  {name:14} {check['verdict']:4} {check['detail']}")
                latency = outcome["checkout_latency_seconds"]
                if latency is not None:
                    print(
                        f"  {'p99 checkout':14} {latency['p99']:.2f} s (p50 {latency['p50']:.2f},"
                        f" max {latency['max']:.2f}, n={latency['count']},"
                        f" unseen {latency['unseen']})"
                    )
            # `souk up`'s own view while it ran: restarts, breaker state changes.
            status = subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
                [sys.executable, "-m", "souk", "resilience", "--data-dir", str(system.data_dir)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            print("\n" + status.stdout)
            if ran.returncode:
                raise SystemExit("an invariant failed (above)")
        finally:
            # After kills and freezes instances stop tier by tier, each up to its grace:
            # longer than stop()'s default wait on a loaded machine (as in test_chaos.py).
            system.stop(timeout=90)


if __name__ == "__main__":
    main()
