"""The `souk` command: up, down, status, logs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from souk import orchestrator
from souk.databases import DatabaseProvisionError
from souk.display import instance_table, make_console
from souk.logs import LogPrinter, NoLogsError, find_logs, follow_logs, print_logs
from souk.plan import PortInUseError
from souk.state import AlreadyRunningError
from souk.topology import TopologyError

app = typer.Typer(
    name="souk",
    help="Run, supervise and inspect the whole Souk system on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "-d",
        help="Where state and logs live (default: the topology's data_dir, else .souk).",
        file_okay=False,
    ),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"souk: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def up(
    topology: Annotated[
        Path | None,
        typer.Option(
            "--topology",
            "-t",
            help="Topology file (default: ./souk.yaml, else the built-in topology).",
            dir_okay=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every instance to be ready.", min=0.1)
    ] = 60.0,
    grace: Annotated[
        float, typer.Option(help="Seconds instances get to exit after SIGTERM.", min=0.0)
    ] = 15.0,
) -> None:
    """Start every instance of the topology and keep them running until Ctrl-C."""
    request = orchestrator.UpRequest(
        topology=topology, data_dir=data_dir, ready_timeout=ready_timeout, grace=grace
    )
    try:
        code = orchestrator.up(request)
    except TopologyError as exc:
        _fail("invalid topology:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except PortInUseError as exc:
        _fail(f"{exc}; nothing was started")
    except AlreadyRunningError as exc:
        _fail(f"{exc}; nothing was started (stop it with `souk down`)")
    except DatabaseProvisionError as exc:
        _fail(f"{exc}; nothing was started")
    raise typer.Exit(code)


@app.command()
def down(
    data_dir: DataDirOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the stop.")] = 30.0,
) -> None:
    """Stop the running `souk up` and every instance it runs."""
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    try:
        state = orchestrator.down(directory, timeout)
    except orchestrator.NotRunningError as exc:
        typer.echo(f"souk: {exc}; nothing to stop")
        return
    except orchestrator.StillRunningError as exc:
        _fail(str(exc))
    typer.echo(f"souk stopped (pid {state.pid}, {len(state.instances)} instances)")


@app.command()
def status(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Show every instance with its health probed now."""
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    try:
        state = orchestrator.live_status(directory)
    except orchestrator.NotRunningError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps({**state.model_dump(mode="json"), "running": True}, indent=2))
        return
    console = make_console()
    console.print(instance_table(state.instances))
    console.print(
        f"orchestrator pid {state.pid}, started {state.started_at}\n"
        f"topology {state.topology}\ndata dir {state.data_dir}",
        markup=False,
    )


@app.command()
def logs(
    target: Annotated[
        str | None, typer.Argument(help="A service name or an instance id (default: all).")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    lines: Annotated[
        int | None, typer.Option("--lines", "-n", help="Only the last N lines per instance.", min=0)
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print JSON lines as they are.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Print instance logs, each line prefixed with its instance id."""
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    printer = LogPrinter(write=typer.echo, raw=raw)
    try:
        print_logs(find_logs(directory, target), printer, lines)
        if follow:
            follow_logs(directory, target, printer)
    except NoLogsError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # The reader (e.g. `head`) went away: stop quietly. Pointing stdout at /dev/null keeps
        # Python's final flush from failing again (the recipe of the `signal` module docs).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
