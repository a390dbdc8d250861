"""The `souk` command: up, down, status, logs, dlq, token, replay, mesh, render."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, NoReturn

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from souk import chaos as chaos_run
from souk import kubernetes, orchestrator
from souk import resilience as resilience_view
from souk.databases import DatabaseProvisionError
from souk.dead_letters import (
    DeadLetter,
    DeadLetterDetail,
    DeadLetterError,
    ProblemAnswerError,
    ServiceDeadLetters,
    http_client,
    list_everywhere,
    ready_urls,
)
from souk.display import (
    DEAD_LETTER_PIPE_WIDTH,
    dead_letter_details,
    dead_letter_table,
    instance_table,
    make_console,
)
from souk.install_secrets import MissingSecretError, client_secret
from souk.logs import LogPrinter, NoLogsError, find_logs, follow_logs, print_logs
from souk.mesh_status import MeshNotRunningError, gather, render
from souk.meshing import MissingMeshCredentialError
from souk.plan import BrokerUnreachableError, PortInUseError
from souk.replay import Rebuild, RebuildStatus, ReplayError
from souk.state import AlreadyRunningError, SoukState
from souk.tokens import CUSTOMER_SCOPES, TokenError, client_token, customer_token
from souk.topology import TopologyError, load_topology, resolve_topology

app = typer.Typer(
    name="souk",
    help="Run, supervise and inspect the whole Souk system on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dlq = typer.Typer(
    name="dlq",
    help="Inspect and replay the dead letters of the running services.",
    no_args_is_help=True,
)
app.add_typer(dlq)
mesh = typer.Typer(
    name="mesh", help="Inspect the service mesh (with `mesh: on`).", no_args_is_help=True
)
app.add_typer(mesh)
render_app = typer.Typer(
    name="render",
    help="Write the topology for another platform (today: Kubernetes).",
    no_args_is_help=True,
)
app.add_typer(render_app)

TopologyOption = Annotated[
    Path | None,
    typer.Option(
        "--topology",
        "-t",
        help="Topology file (default: ./souk.yaml, else the built-in topology).",
        dir_okay=False,
    ),
]
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
    topology: TopologyOption = None,
    data_dir: DataDirOption = None,
    ready_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every instance to be ready.", min=0.1)
    ] = 60.0,
    grace: Annotated[
        float, typer.Option(help="Seconds instances get to exit after SIGTERM.", min=0.0)
    ] = 15.0,
    host: Annotated[
        str | None,
        typer.Option(
            help="Multi-host topologies: run only the instances placed on this host "
            "(a name under `hosts:`)."
        ),
    ] = None,
) -> None:
    """Start every instance of the topology and keep them running until Ctrl-C."""
    request = orchestrator.UpRequest(
        topology=topology, data_dir=data_dir, ready_timeout=ready_timeout, grace=grace, host=host
    )
    try:
        code = orchestrator.up(request)
    except TopologyError as exc:
        _fail("invalid topology:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except (PortInUseError, BrokerUnreachableError) as exc:
        _fail(f"{exc}; nothing was started")
    except AlreadyRunningError as exc:
        _fail(f"{exc}; nothing was started (stop it with `souk down`)")
    except (DatabaseProvisionError, MissingMeshCredentialError) as exc:
        _fail(f"{exc}; nothing was started")
    raise typer.Exit(code)


@app.command()
def secrets(
    topology: TopologyOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make the installation's secrets in the data dir without starting anything.

    A topology on several hosts needs the same secrets on each: make them once, then copy
    the files printed into every host's data dir (as any secret is distributed).
    """
    try:
        made = orchestrator.make_secrets(topology, data_dir, Path.cwd())
    except TopologyError as exc:
        _fail("invalid topology:\n" + "\n".join(f"  {p}" for p in exc.problems))
    for path in made:
        typer.echo(str(path))


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
def resilience(data_dir: DataDirOption = None) -> None:
    """Show each instance's circuit breakers, bulkheads, retries and shed requests."""
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    try:
        state = orchestrator.live_status(directory)
    except orchestrator.NotRunningError as exc:
        _fail(str(exc))
    found = asyncio.run(resilience_view.scrape(state.instances))
    make_console().print(resilience_view.resilience_table(found))


@app.command()
def chaos(
    *,
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help="Scenarios to run, in order (default: all of them; see --list)."),
    ] = None,
    list_them: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
    burst: Annotated[int, typer.Option(help="Checkouts per scenario.", min=1)] = 40,
    concurrency: Annotated[int, typer.Option(help="Shoppers at once.", min=1)] = 8,
    customers: Annotated[int, typer.Option(help="Customers signed up for the run.", min=1)] = 4,
    fault_seconds: Annotated[
        float | None,
        typer.Option(help="How long every freeze lasts (default: each scenario's own).", min=0),
    ] = None,
    settle: Annotated[
        float,
        typer.Option(help="Seconds the invariants get to hold after the burst.", min=0),
    ] = 180.0,
    broker_restart_command: Annotated[
        str | None,
        typer.Option(help="A command that restarts the broker server (restart-broker)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcomes as JSON.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Inject faults during bursts of checkouts and check that nothing is lost; exit 1 if any
    invariant fails.

    Run it against a system `souk up` runs (and nothing else is using): each scenario places
    its own checkouts, injects one fault into one instance, and asks every service whether
    each order ended, stock is conserved, each confirmed order was captured once and nothing
    else was, and no customer was told twice.
    """
    if list_them:
        for scenario in chaos_run.SCENARIOS.values():
            typer.echo(f"{scenario.name:26} {scenario.summary}")
        return
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    options = chaos_run.Options(
        burst=burst,
        concurrency=concurrency,
        customers=customers,
        fault_seconds=fault_seconds,
        settle=settle,
        broker_restart_command=broker_restart_command,
    )
    names = scenarios or list(chaos_run.SCENARIOS)
    system = chaos_run.RunningSystem(directory)

    def report(line: str) -> None:
        typer.echo(line, err=True)

    try:
        outcomes = asyncio.run(chaos_run.run(system, names, options, report))
    except (chaos_run.ChaosError, TokenError, httpx.HTTPError) as exc:
        _fail(f"chaos stopped: {chaos_run.described(exc)}")
    if as_json:
        typer.echo(json.dumps([outcome.as_dict() for outcome in outcomes], indent=2))
    else:
        make_console(pipe_width=DEAD_LETTER_PIPE_WIDTH).print(chaos_run.outcome_table(outcomes))
    failed = [outcome.scenario for outcome in outcomes if outcome.failed]
    if failed:
        _fail(f"invariants failed in {', '.join(failed)}")


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


ServiceArgument = Annotated[str, typer.Argument(help="The service that keeps the dead letters.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
def token(
    email: Annotated[
        str | None, typer.Option(help="A customer's email: signs them in (registers if new).")
    ] = None,
    client: Annotated[
        str | None, typer.Option(help="A confidential client's id: client credentials.")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="A scope to ask for; repeat for several.")
    ] = None,
    gateway: Annotated[str, typer.Option(help="The gateway's URL.")] = "http://localhost:8080",
    data_dir: DataDirOption = None,
) -> None:
    """Print an access token from identity, for `curl -H "Authorization: Bearer $(souk token ...)"`.

    The password is read from SOUK_PASSWORD, or asked for; the client secret from
    SOUK_CLIENT_SECRET, else the installation's secrets file that `souk up` made in the data
    dir. Neither is taken from the command line (it would stay in the shell history).
    """
    if (email is None) == (client is None):
        _fail("give either --email (a customer) or --client (a script or service)", code=2)
    try:
        if email is not None:
            password = os.environ.get("SOUK_PASSWORD") or typer.prompt("password", hide_input=True)
            scopes = scope or list(CUSTOMER_SCOPES)
            typer.echo(customer_token(gateway, email, password, scopes=scopes))
        elif client is not None:
            secret = os.environ.get("SOUK_CLIENT_SECRET") or _installed_secret(data_dir, client)
            typer.echo(client_token(gateway, client, secret, scope or []))
    except (TokenError, httpx.HTTPError) as exc:
        _fail(str(exc))


def _installed_secret(data_dir: Path | None, client: str) -> str:
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    try:
        return client_secret(directory, client)
    except MissingSecretError:
        secret: str = typer.prompt("client secret", hide_input=True)
        return secret


def _running(data_dir: Path | None) -> SoukState:
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    try:
        return orchestrator.running_state(directory)
    except orchestrator.NotRunningError as exc:
        _fail(str(exc))


def _ready_urls_of(state: SoukState, service: str) -> list[str]:
    try:
        return ready_urls(state, service)[service]
    except DeadLetterError as exc:
        _fail(str(exc))


@dlq.command("list")
def dlq_list(
    service: Annotated[
        str | None, typer.Argument(help="Only this service (default: every service).")
    ] = None,
    include_replayed: Annotated[
        bool, typer.Option("--all", help="Include the dead letters already replayed.")
    ] = False,
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """List the dead letters of every service (or one), oldest first."""
    state = _running(data_dir)
    try:
        urls = ready_urls(state, service)
    except DeadLetterError as exc:
        _fail(str(exc))

    async def gather() -> tuple[list[DeadLetter], dict[str, str]]:
        async with http_client() as client:
            services = [ServiceDeadLetters(name, found, client) for name, found in urls.items()]
            return await list_everywhere(services, include_replayed=include_replayed)

    letters, failures = asyncio.run(gather())
    if as_json:
        items = [letter.model_dump(mode="json") for letter in letters]
        typer.echo(json.dumps({"items": items, "unreachable": failures}, indent=2))
    elif letters:
        console = make_console(pipe_width=DEAD_LETTER_PIPE_WIDTH)
        console.print(dead_letter_table(letters, replayed=include_replayed))
    else:
        typer.echo("no dead letters")
    for message in failures.values():
        typer.echo(f"souk: {message}", err=True)
    if failures:
        raise typer.Exit(1)


@dlq.command("show")
def dlq_show(
    service: ServiceArgument,
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")],
    as_json: JsonOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Show one dead letter: its fields, error, headers and payload."""
    urls = _ready_urls_of(_running(data_dir), service)

    async def fetch() -> DeadLetterDetail:
        async with http_client() as client:
            return await ServiceDeadLetters(service, urls, client).show(dead_letter_id)

    try:
        letter = asyncio.run(fetch())
    except DeadLetterError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(letter.model_dump(mode="json"), indent=2))
        return
    make_console().print(dead_letter_details(letter))


@dlq.command("replay")
def dlq_replay(
    service: ServiceArgument,
    dead_letter_id: Annotated[
        int | None, typer.Argument(metavar="ID", help="The dead letter to replay.")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Replay every dead letter of the service, oldest first.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Hand dead letters to their handler again; exit 1 if any fails again."""
    if (dead_letter_id is None) == (not every):
        raise typer.BadParameter("give a dead letter ID or --all (not both)")
    urls = _ready_urls_of(_running(data_dir), service)

    async def replay() -> None:
        async with http_client() as client:
            box = ServiceDeadLetters(service, urls, client)
            if dead_letter_id is not None:
                try:
                    _replayed(await box.replay(dead_letter_id))
                except ProblemAnswerError as exc:
                    _fail(f"{service} #{dead_letter_id} not replayed: {exc.reason}: {exc.detail}")
                return
            letters = await box.list()
            if not letters:
                typer.echo(f"no dead letters in {service}")
            failed = 0
            for letter in letters:
                try:
                    _replayed(await box.replay(letter.id))
                except ProblemAnswerError as exc:
                    failed += 1
                    typer.echo(f"failed   {service} #{letter.id}: {exc.reason}: {exc.detail}")
            if failed:
                _fail(f"{failed} of {len(letters)} dead letters of {service} not replayed")

    try:
        asyncio.run(replay())
    except DeadLetterError as exc:
        _fail(str(exc))


def _replayed(letter: DeadLetter) -> None:
    typer.echo(f"replayed {letter.service} #{letter.id} ({letter.topic}, key {letter.key})")


@app.command()
def replay(
    service: Annotated[
        str, typer.Argument(help="The service whose read model to rebuild: order-history.")
    ],
    data_dir: DataDirOption = None,
) -> None:
    """Rebuild a service's read model from scratch, from the events it archived, and show how
    far it got; exit 1 if it fails (the old model then stays).

    The service re-reads every message it ever took in from the event archive in its own
    database (each kept with its effect, so the archive is exactly what the live model was
    built from), not from the broker: brokers forget messages once every group has them.
    Events published before the service first subscribed are in neither. The new model
    replaces the old in one transaction; live events wait for it and then apply on top.
    """
    urls = _ready_urls_of(_running(data_dir), service)
    console = make_console(sys.stderr)
    with Progress(
        TextColumn(f"rebuilding {service}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("events"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("rebuild", total=None)

        def show(status: RebuildStatus) -> None:
            progress.update(task, completed=status.done, total=status.total or None)

        async def run() -> RebuildStatus:
            async with http_client() as client:
                return await Rebuild(service, urls, client).run(show)

        try:
            status = asyncio.run(run())
        except ReplayError as exc:
            _fail(str(exc))
    counts = ", ".join(
        f"{count} {name}"
        for name, count in (("orders", status.orders), ("products", status.products))
        if count is not None
    )
    typer.echo(
        f"{service} rebuilt from {status.done} archived events"
        + (f": {counts}" if counts else "")
        + f" ({status.seconds:.1f} s)"
    )


@mesh.command("status")
def mesh_status(
    data_dir: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Identities and certificate expiry, endpoints with health and ejections, the policy."""
    directory = orchestrator.data_dir_for_inspection(data_dir, Path.cwd())
    try:
        status = gather(directory)
    except MeshNotRunningError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    render(status, make_console())


@render_app.command("kubernetes")
def render_kubernetes(
    *,
    topology: TopologyOption = None,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="The kustomize tree's directory.", file_okay=False),
    ] = Path("deploy/kubernetes"),
    namespace: Annotated[str, typer.Option(help="The namespace of every resource.")] = "souk",
    overlay: Annotated[
        str | None,
        typer.Option(help="Also print this overlay's built manifests (dev or prod)."),
    ] = None,
    forwarded_allow_ips: Annotated[
        list[str] | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="A proxy (address or network) whose X-Forwarded-For the gateway believes; "
            "repeat for several (default: 127.0.0.6, Istio's sidecar).",
        ),
    ] = None,
    ops_networks: Annotated[
        list[str] | None,
        typer.Option(
            "--ops-networks",
            help="A network that may read the gateway's /healthz, /readyz and /metrics; repeat "
            "for several (default: loopback, where Istio's agent probes and scrapes from).",
        ),
    ] = None,
) -> None:
    """Write Kubernetes manifests (kustomize base, overlays dev and prod) for the topology."""
    if overlay is not None and overlay not in kubernetes.OVERLAYS:
        _fail(f"unknown overlay {overlay!r} (one of {', '.join(kubernetes.OVERLAYS)})")
    path, is_default = resolve_topology(topology, Path.cwd())
    try:
        loaded = load_topology(path, display_name="default topology" if is_default else None)
        cluster = kubernetes.Cluster(namespace=namespace)
        if forwarded_allow_ips:
            cluster = replace(cluster, forwarded_allow_ips=tuple(forwarded_allow_ips))
        if ops_networks:
            cluster = replace(cluster, ops_networks=tuple(ops_networks))
        files = kubernetes.render(loaded, cluster)
        kubernetes.write(files, output)
        built = kubernetes.build_overlay(output, overlay) if overlay else None
    except TopologyError as exc:
        _fail("invalid topology:\n" + "\n".join(f"  {p}" for p in exc.problems))
    except kubernetes.RenderError as exc:
        _fail(str(exc))
    if built is not None:
        typer.echo(built, nl=False)
    else:
        shown = "the default topology" if is_default else str(path)
        typer.echo(f"wrote {len(files)} files for {shown} to {output}", err=True)
