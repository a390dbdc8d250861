"""What the user sees: the instance and dead-letter tables, and event reporting."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from souk.dead_letters import DeadLetter, DeadLetterDetail
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
# Dead letters take more columns, with keys and topics of any length.
DEAD_LETTER_PIPE_WIDTH = 200
_ERROR_WIDTH = 40


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
            _where(record),
            Text(record.state.value, style=_STATE_STYLE[record.state]),
            Text(record.health.value, style=_HEALTH_STYLE[record.health]),
            str(record.restarts),
            format_uptime(record.started_at if running else None),
        )
    return table


def _where(record: InstanceRecord) -> str:
    if record.socket is not None:
        # The mesh on: a private Unix socket; callers reach it on its sidecar's port.
        return f"mesh {record.port}"
    return f"{record.port} grpc {record.grpc_port}" if record.grpc_port else str(record.port)


def shorten(text: str, width: int) -> str:
    """The first line of text, cut to width characters with an ellipsis."""
    lines = text.strip().splitlines() or [""]
    line = lines[0] + (" …" if len(lines) > 1 else "")
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def format_time(iso: str | None) -> str:
    """An ISO timestamp in local time to the second, e.g. `2025-05-01 14:03:22`; `-` if none."""
    if iso is None:
        return "-"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def dead_letter_table(letters: Sequence[DeadLetter], *, replayed: bool = False) -> Table:
    """Service, id, topic, event type, key, attempts, error, buried at (and replayed at)."""
    table = Table(header_style="bold")
    table.add_column("service", no_wrap=True)
    table.add_column("id", justify="right", no_wrap=True)
    for column in ("topic", "event type", "key"):
        table.add_column(column)
    table.add_column("attempts", justify="right", no_wrap=True)
    # `show` prints the error whole.
    table.add_column("error", no_wrap=True, overflow="ellipsis", max_width=_ERROR_WIDTH)
    table.add_column("buried at", no_wrap=True)
    if replayed:
        table.add_column("replayed at", no_wrap=True)
    for letter in letters:
        # Text cells: topics, keys and errors may hold [brackets] that rich reads as markup.
        row: list[RenderableType] = [
            letter.service,
            str(letter.id),
            Text(letter.topic),
            Text(letter.event_type),
            Text(letter.key),
            str(letter.attempts),
            Text(shorten(letter.error, _ERROR_WIDTH), style="red"),
            format_time(letter.buried_at),
        ]
        if replayed:
            row.append(format_time(letter.replayed_at))
        table.add_row(*row)
    return table


def dead_letter_details(letter: DeadLetterDetail) -> Group:
    """Everything about one dead letter: its fields, error, headers and payload."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    for name, value in (
        ("service", letter.service),
        ("id", str(letter.id)),
        ("group", letter.group),
        ("topic", letter.topic),
        ("key", letter.key),
        ("message id", letter.message_id),
        ("event type", f"{letter.event_type} (schema version {letter.schema_version})"),
        ("attempts", str(letter.attempts)),
        ("buried at", format_time(letter.buried_at)),
        ("replayed at", format_time(letter.replayed_at)),
        ("error", letter.error),
    ):
        fields.add_row(name, Text(value))
    headers = Table.grid(padding=(0, 2))
    headers.add_column(style="bold")
    headers.add_column()
    for name, value in letter.headers.items():
        headers.add_row(Text(name), Text(value))
    return Group(
        fields,
        Text("\nheaders", style="bold"),
        headers,
        Text("\npayload", style="bold"),
        Text(_payload_text(letter)),
    )


def _payload_text(letter: DeadLetterDetail) -> str:
    if letter.payload is None:
        return f"(binary, base64) {letter.payload_base64 or ''}"
    try:
        return json.dumps(json.loads(letter.payload), indent=2, ensure_ascii=False)
    except ValueError:
        return letter.payload


def banner(url: str | None) -> str:
    """The line telling the user the system is up and how to stop it."""
    where = f": {url}" if url else ""
    return f"Souk is up{where} — Ctrl-C to stop"


def make_console(file: TextIO | None = None, pipe_width: int = _PIPE_WIDTH) -> Console:
    """A console that never wraps tables when the output is not a terminal."""
    stream = file or sys.stdout
    return Console(file=stream, width=None if stream.isatty() else pipe_width, highlight=False)


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
