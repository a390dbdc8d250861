"""What the user sees: the instance table, and event reporting for terminals and for pipes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from souk.state import Health, InstanceRecord, InstanceState

_STATE_STYLE = {
    InstanceState.READY: "green",
    InstanceState.STARTING: "yellow",
    InstanceState.RESTARTING: "yellow",
    InstanceState.FAILED: "bold red",
    InstanceState.STOPPED: "dim",
}
_HEALTH_STYLE = {
    Health.OK: "green",
    Health.UNREADY: "yellow",
    Health.DOWN: "red",
    Health.UNKNOWN: "dim",
}
# Wide enough that the table never wraps when output goes to a file or pipe.
_PIPE_WIDTH = 120


def format_uptime(started_at: str | None, now: datetime | None = None) -> str:
    """A compact duration since started_at, e.g. `12s`, `3m05s`, `1h02m`; `-` if not running."""
    if started_at is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - datetime.fromisoformat(started_at)).total_seconds())
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def instance_table(records: Sequence[InstanceRecord], title: str | None = None) -> Table:
    """The instance table: service, instance, pid, port, state, health, restarts, uptime."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("service", "instance", "pid", "port", "state", "health"):
        table.add_column(column)
    table.add_column("restarts", justify="right")
    table.add_column("uptime", justify="right")
    for record in records:
        running = record.state in (InstanceState.STARTING, InstanceState.READY)
        table.add_row(
            record.service,
            record.instance,
            str(record.pid) if record.pid is not None else "-",
            f"{record.port} grpc {record.grpc_port}" if record.grpc_port else str(record.port),
            Text(record.state.value, style=_STATE_STYLE[record.state]),
            Text(record.health.value, style=_HEALTH_STYLE[record.health]),
            str(record.restarts),
            format_uptime(record.started_at if running else None),
        )
    return table


def banner(url: str | None) -> str:
    """The line telling the user the system is up and how to stop it."""
    where = f": {url}" if url else ""
    return f"Souk is up{where} — Ctrl-C to stop"


def make_console(file: TextIO | None = None) -> Console:
    """A console that never wraps tables when the output is not a terminal."""
    stream = file or sys.stdout
    return Console(file=stream, width=None if stream.isatty() else _PIPE_WIDTH, highlight=False)


class Reporter(Protocol):
    """Where the supervisor reports what happens."""

    def start(self) -> None:
        """Begin showing progress."""

    def event(self, instance: str, message: str) -> None:
        """One thing happened to one instance."""

    def problem(self, message: str) -> None:
        """Something went wrong that the user must read (may span lines)."""

    def all_ready(self) -> None:
        """Every instance answered /readyz with 200."""

    def stop(self) -> None:
        """Stop showing progress."""


class PlainReporter:
    """For pipes, files and CI: one timestamped line per event, the table once when ready."""

    def __init__(
        self,
        snapshot: Callable[[], list[InstanceRecord]],
        url: str | None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._url = url
        self._console = make_console(out)
        self._err = make_console(err or sys.stderr)

    def start(self) -> None:
        """Nothing to set up for plain output."""

    def event(self, instance: str, message: str) -> None:
        """Print `HH:MM:SS instance message`."""
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        self._console.print(f"{stamp} {instance} {message}", markup=False, soft_wrap=True)
        self._console.file.flush()

    def problem(self, message: str) -> None:
        """Print to stderr."""
        self._err.print(message, markup=False, soft_wrap=True)
        self._err.file.flush()

    def all_ready(self) -> None:
        """Print the table and the banner."""
        self._console.print(instance_table(self._snapshot()))
        self._console.print(banner(self._url), markup=False, soft_wrap=True)
        self._console.file.flush()

    def stop(self) -> None:
        """Nothing to tear down for plain output."""


class LiveReporter:
    """For terminals: a table refreshed twice a second, with events printed above it."""

    def __init__(self, snapshot: Callable[[], list[InstanceRecord]], url: str | None) -> None:
        self._snapshot = snapshot
        self._url = url
        self._ready = False
        self._stopped = False
        self._console = make_console()
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=2,
            transient=False,
        )

    def _render(self) -> RenderableType:
        if self._stopped:
            status = Text("Souk stopped", style="bold")
        elif self._ready:
            status = Text(banner(self._url), style="bold green")
        else:
            status = Text("Starting Souk… (Ctrl-C to stop)", style="yellow")
        return Group(instance_table(self._snapshot()), status)

    def start(self) -> None:
        """Show the live table."""
        self._live.start()

    def event(self, instance: str, message: str) -> None:
        """Print the event above the table."""
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        self._live.console.print(Text(f"{stamp} ", style="dim") + Text(f"{instance} {message}"))

    def problem(self, message: str) -> None:
        """Print in red above the table."""
        self._live.console.print(Text(message, style="red"))

    def all_ready(self) -> None:
        """Switch the status line to the banner."""
        self._ready = True
        self._live.refresh()

    def stop(self) -> None:
        """Leave the last table on screen."""
        self._stopped = True
        self._live.stop()


def make_reporter(snapshot: Callable[[], list[InstanceRecord]], url: str | None) -> Reporter:
    """A live table on a terminal, plain lines anywhere else."""
    if sys.stdout.isatty():
        return LiveReporter(snapshot, url)
    return PlainReporter(snapshot, url)
