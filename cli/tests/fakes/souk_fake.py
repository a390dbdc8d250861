"""A stand-in service for the orchestrator tests, run as `python -m souk_fake`.

It reads the process contract like a real service (`{P}PORT`, `{P}UPSTREAMS`, ...) where P comes
from FAKE_SERVICE, answers /healthz, /readyz and /whoami, and misbehaves on request:
FAKE_START_DELAY (seconds before binding), FAKE_NEVER_READY=1 (/readyz stays 503),
FAKE_EXIT_CODE=N (exit at once with N), FAKE_IGNORE_SIGTERM=1 (only SIGKILL stops it).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SERVICE = os.environ["FAKE_SERVICE"]
PREFIX = SERVICE.upper().replace("-", "_") + "_"


def log(event: str, **fields: Any) -> None:
    record = {"time": datetime.now(UTC).isoformat(), "level": "info", "event": event, **fields}
    print(json.dumps(record), flush=True)


def whoami() -> dict[str, Any]:
    return {
        "instance": os.environ[f"{PREFIX}INSTANCE"],
        "host": os.environ[f"{PREFIX}HOST"],
        "port": int(os.environ[f"{PREFIX}PORT"]),
        "data_dir": os.environ[f"{PREFIX}DATA_DIR"],
        "upstreams": json.loads(os.environ[f"{PREFIX}UPSTREAMS"]),
        "pid": os.getpid(),
        "env": {
            key: value
            for key, value in os.environ.items()
            if key.startswith(("EXTRA_", PREFIX)) or key == "PYTHONUNBUFFERED"
        },
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.reply(200, {"status": "ok"})
        elif self.path == "/readyz":
            ready = os.environ.get("FAKE_NEVER_READY") != "1"
            self.reply(200 if ready else 503, {"ready": ready})
        elif self.path == "/whoami":
            self.reply(200, whoami())
        else:
            self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args: Any) -> None:
        """Probes every 200 ms would flood the log; stay quiet."""


def on_sigterm(signum: int, frame: object) -> None:
    log("stopping", signal="SIGTERM")
    sys.exit(0)


def main() -> None:
    instance = os.environ[f"{PREFIX}INSTANCE"]
    if "FAKE_EXIT_CODE" in os.environ:
        log("failing on purpose", instance=instance)
        sys.exit(int(os.environ["FAKE_EXIT_CODE"]))
    if os.environ.get("FAKE_IGNORE_SIGTERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_sigterm)
    time.sleep(float(os.environ.get("FAKE_START_DELAY", "0")))
    port = int(os.environ[f"{PREFIX}PORT"])
    server = ThreadingHTTPServer((os.environ[f"{PREFIX}HOST"], port), Handler)
    if os.environ.get("FAKE_NEVER_READY") == "1":
        log("never ready on purpose", instance=instance)
    log("listening", instance=instance, port=port)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
