"""Instance log files: finding them, rendering JSON lines readably, tailing and following."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

LOGS_DIR = "logs"
_TIME_KEYS = ("time", "timestamp", "ts", "@timestamp")
_LEVEL_KEYS = ("level", "levelname", "severity")
_EVENT_KEYS = ("event", "msg", "message")
_INSTANCE_FILE = re.compile(r"(?P<service>.+)-(?P<index>\d+)")


class NoLogsError(Exception):
    """No log file matches what was asked for."""


def logs_dir(data_dir: Path) -> Path:
    """Where instance logs live."""
    return data_dir / LOGS_DIR


def _sort_key(path: Path) -> tuple[str, int]:
    match = _INSTANCE_FILE.fullmatch(path.stem)
    return (match["service"], int(match["index"])) if match else (path.stem, 0)


def find_logs(data_dir: Path, target: str | None = None) -> list[Path]:
    """Log files of all instances, of one service, or of one instance id, in a stable order."""
    directory = logs_dir(data_dir)
    files = sorted(directory.glob("*.log"), key=_sort_key) if directory.is_dir() else []
    if target is None:
        chosen = files
    else:
        exact = [path for path in files if path.stem == target]
        chosen = exact or [
            path
            for path in files
            if (match := _INSTANCE_FILE.fullmatch(path.stem)) and match["service"] == target
        ]
    if not chosen:
        known = ", ".join(path.stem for path in files) or "none"
        what = f"for {target!r} " if target else ""
        raise NoLogsError(f"no logs {what}in {directory} (instances with logs: {known})")
    return chosen


def tail_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines of a file (without line endings); empty if it is unreadable."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=count)]
    except OSError:
        return []


def _pop_first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in record:
            return record.pop(key)
    return None


def _format_time(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="milliseconds")
    return str(value)


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return (
            value
            if value and not any(char.isspace() or char in '"=' for char in value)
            else json.dumps(value)
        )
    return json.dumps(value, separators=(",", ":"))


def render_line(line: str) -> str:
    """A JSON log line as `time LEVEL event key=value ...`; any other line unchanged."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line
    try:
        record = json.loads(stripped)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    moment = _pop_first(record, _TIME_KEYS)
    level = _pop_first(record, _LEVEL_KEYS)
    event = _pop_first(record, _EVENT_KEYS)
    parts = [
        _format_time(moment) if moment is not None else "",
        f"{str(level).upper():<5}" if level is not None else "",
        str(event) if event is not None else "",
        *(f"{key}={_format_value(value)}" for key, value in record.items()),
    ]
    return " ".join(part for part in parts if part)


@dataclass
class LogPrinter:
    """Prints lines prefixed by their instance id, padded so that columns line up."""

    write: Callable[[str], None]
    raw: bool = False
    width: int = 0

    def widen(self, paths: list[Path]) -> None:
        """Make room for the longest instance id among these files."""
        self.width = max([self.width, *(len(path.stem) for path in paths)])

    def emit(self, instance: str, line: str) -> None:
        """Print one log line of one instance."""
        text = line if self.raw else render_line(line)
        self.write(f"{instance:<{self.width}} | {text}")


def print_logs(paths: list[Path], printer: LogPrinter, last: int | None) -> None:
    """Print each file's lines (only the last `last` ones when given), file after file."""
    printer.widen(paths)
    for path in paths:
        lines = tail_lines(path, last) if last is not None else _all_lines(path)
        for line in lines:
            printer.emit(path.stem, line)


def _all_lines(path: Path) -> Iterator[str]:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                yield line.rstrip("\n")
    except OSError:
        return


@dataclass
class _Followed:
    path: Path
    handle: IO[str]
    partial: str = ""
    inode: int = field(default=0)


def follow_logs(
    data_dir: Path,
    target: str | None,
    printer: LogPrinter,
    *,
    interval: float = 0.25,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Print lines appended from now on, picking up new instances' files, until should_stop()."""
    followed: dict[Path, _Followed] = {}

    def open_new(at_end: bool) -> None:
        try:
            paths = find_logs(data_dir, target)
        except NoLogsError:
            return
        fresh = [path for path in paths if path not in followed]
        printer.widen(fresh)
        for path in fresh:
            try:
                handle = path.open("r", encoding="utf-8", errors="replace")
            except OSError:
                continue
            if at_end:
                handle.seek(0, 2)
            followed[path] = _Followed(path, handle, inode=path.stat().st_ino)

    open_new(at_end=True)
    try:
        while not should_stop():
            open_new(at_end=False)
            for item in followed.values():
                _drain(item, printer)
            time.sleep(interval)
    finally:
        for item in followed.values():
            item.handle.close()


def _drain(item: _Followed, printer: LogPrinter) -> None:
    try:
        stat = item.path.stat()
    except OSError:
        return
    if stat.st_ino != item.inode or stat.st_size < item.handle.tell():
        # The file was replaced or truncated: start over from its beginning.
        item.handle.close()
        item.handle = item.path.open("r", encoding="utf-8", errors="replace")
        item.inode = stat.st_ino
        item.partial = ""
    chunk = item.handle.read()
    if not chunk:
        return
    *complete, item.partial = (item.partial + chunk).split("\n")
    for line in complete:
        printer.emit(item.path.stem, line)
