"""The default system with `mesh: on`: every call between Souk's processes goes through two
Envoy sidecars with mTLS; a checkout works, a killed sidecar comes back, and the SIGKILL
tests of test_saga.py pass unchanged on it. An application opens no TCP port: it listens on
a private Unix socket its sidecar connects to, and its internal routes answer through the
sidecar only the callers the policy names.

One system of the module's own (SQLite, the embedded broker), 29 processes more than none:
the control plane and a sidecar beside each of the 14 instances.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import ssl
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mesh.authority import CertificateAuthority, service_id
from souk import resilience
from souk.testing import SoukSystem

from . import test_saga as saga
from .conftest import default_topology, new_shopper

# The saga's fixtures, here bound to this module's meshed `system`.
from .test_saga import reader, shoppers  # noqa: F401 - pytest uses them here


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoukSystem]:
    topology = default_topology()
    topology["mesh"] = {"enabled": True}
    system = SoukSystem(topology, tmp_path_factory.mktemp("souk-mesh"), ready_timeout=90)
    system.start()
    try:
        _wait_for_healthy_routes(system)
        yield system
    finally:
        # Stopping tier by tier takes longer with a sidecar beside every instance (and the
        # control plane last): up to ~30 s on a loaded machine after the saga's burst.
        system.stop(timeout=60)


def _wait_for_healthy_routes(system: SoukSystem, timeout: float = 60.0) -> None:
    """Until the gateway's sidecar has seen identity and catalog pass a health check.

    A sidecar counts a new endpoint healthy only after its first active health check, so the
    first requests after "ready" can meet `no healthy upstream` on a loaded machine.
    """
    deadline = time.monotonic() + timeout
    paths = ["/.well-known/openid-configuration", "/api/catalog/categories"]
    while paths:
        answered = httpx.get(f"{system.gateway_url}{paths[0]}", timeout=5).status_code
        if answered == 200:
            paths.pop(0)
            continue
        assert time.monotonic() < deadline, f"{paths[0]} still answers {answered}"
        time.sleep(0.5)


def _stats(system: SoukSystem, instance: str) -> str:
    """The Prometheus text of an instance's sidecar (its ops port, as a scraper sees it)."""
    sidecar = system.instance(instance)
    return httpx.get(f"{sidecar.url}/stats/prometheus", timeout=5).text


def _upstream_requests(text: str, cluster: str) -> int:
    name = re.escape(cluster)
    pattern = rf'^envoy_cluster_upstream_rq_total\{{envoy_cluster_name="{name}"\}} (\d+)'
    found = re.search(pattern, text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _sidecar_of(service: str, index: int = 1) -> str:
    return f"{service}-sidecar-{index}"


def _mesh_status(system: SoukSystem) -> dict:
    return json.loads((system.data_dir / "mesh" / "status.json").read_text())


def test_every_instance_has_a_ready_sidecar_and_an_identity(system: SoukSystem) -> None:
    services = {"gateway", "catalog", "inventory", "orders", "billing", "identity"}
    for service in services:
        for record in system.instances(service):
            index = int(record.instance.rsplit("-", 1)[1])
            assert system.instance(_sidecar_of(service, index)).state == "ready"
    identities = {i["instance"]: i["spiffe_id"] for i in _mesh_status(system)["instances"]}
    assert identities["orders-1"] == "spiffe://souk.local/service/orders"
    assert identities["catalog-2"] == "spiffe://souk.local/service/catalog"


def test_a_checkout_goes_through_the_sidecars(system: SoukSystem) -> None:
    before = _stats(system, _sidecar_of("orders"))
    with new_shopper(system) as shopper:
        products = shopper.get("/api/catalog/products", params={"category": "spices"}).json()
        item = products["items"][0]
        placed = shopper.post(
            "/api/orders",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={
                "items": [{"product_id": item["id"], "quantity": 1}],
                "payment": {"card_token": "tok_ok"},
            },
        )
        assert placed.status_code in (201, 202), placed.text
        order_id = placed.json()["id"]

        def settled() -> dict | None:
            order = shopper.get(f"/api/orders/{order_id}").json()
            return order if order["status"] in {"CONFIRMED", "REJECTED", "CANCELLED"} else None

        order = system.wait_until(settled, timeout=30, interval=0.2, message="order settled")
    assert order["status"] == "CONFIRMED", order
    after = _stats(system, _sidecar_of("orders"))
    # orders called catalog (prices), inventory (gRPC reserve/commit) and billing through
    # its sidecar: the sidecar's upstream counters moved for each.
    for callee in ("catalog", "inventory", "billing"):
        assert _upstream_requests(after, callee) > _upstream_requests(before, callee), callee


def test_a_sidecar_inbound_port_refuses_a_plaintext_caller(system: SoukSystem) -> None:
    inbound = next(i for i in _mesh_status(system)["instances"] if i["instance"] == "identity-1")
    host, port = inbound["inbound"].rsplit(":", 1)
    with pytest.raises((httpx.TransportError, ssl.SSLError)):
        httpx.get(f"http://{host}:{port}/internal/keys/rotate", timeout=5)


def test_a_killed_sidecar_is_restarted_and_calls_flow_again(system: SoukSystem) -> None:
    victim = _sidecar_of("catalog", 1)
    restarts = system.instance(victim).restarts
    system.kill(victim, signal.SIGKILL)
    system.wait_until(
        lambda: (
            system.instance(victim).restarts == restarts + 1
            and system.instance(victim).state == "ready"
        ),
        timeout=30,
        message=f"{victim} restarted",
    )
    for _ in range(20):
        answer = httpx.get(f"{system.gateway_url}/api/catalog/products", timeout=10)
        assert answer.status_code == 200, answer.text


def test_the_console_shows_each_instance_with_its_sidecar(system: SoukSystem) -> None:
    """The console's instances page: each instance's sidecar beside it (health, restarts,
    identity) and the upstreams it sees; the Breakers page, every sidecar's Envoy breakers."""
    console = system.url("console")

    def row(page: str, instance: str) -> str:
        found = page[page.index(f'<tr data-instance="{instance}">') :]
        return found[: found.index("</tr>")]

    def shown() -> str | None:
        page = httpx.get(f"{console}/", timeout=5).text
        # Until the console's scrape (every few seconds) saw orders' sidecar after its first
        # health checks: a scrape from just before shows the endpoints not yet checked.
        healthy = re.search(r'data-upstream="inventory"[^>]*>inventory 2/2<', row(page, "orders-1"))
        return page if healthy else None

    page = system.wait_until(shown, timeout=30, interval=1, message="the sidecars' upstreams")
    for record in system.state().instances:
        if record.service.endswith("-sidecar") or record.service in {"mesh", "console"}:
            continue
        index = int(record.instance.rsplit("-", 1)[1])
        sidecar = system.instance(_sidecar_of(record.service, index))
        cell = row(page, record.instance)
        assert f'class="sidecar" data-instance="{sidecar.instance}"' in cell, record.instance
        assert f'data-field="restarts">{sidecar.restarts}</span>' in cell, record.instance
    orders = row(page, "orders-1")
    assert "spiffe://souk.local/service/orders" in orders
    assert re.search(r'data-upstream="inventory"[^>]*>inventory 2/2<', orders), orders
    assert '<tr data-instance="mesh-1">' in page  # the control plane is an instance too
    breakers = httpx.get(f"{console}/resilience", timeout=5).text
    assert '<tr data-instance="orders-sidecar-1" data-upstream="inventory">' in breakers


def test_souk_mesh_status_shows_identities_endpoints_and_the_policy(system: SoukSystem) -> None:
    shown = system.souk("mesh", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    orders = next(i for i in status["instances"] if i["instance"] == "orders-1")
    assert orders["spiffe_id"] == "spiffe://souk.local/service/orders"
    assert orders["not_after"]
    assert orders["sidecar"] == "up"
    inventory = next(u for u in orders["upstreams"] if u["cluster"] == "inventory")
    assert {e["instance"] for e in inventory["endpoints"]} == {"inventory-1", "inventory-2"}
    assert all(e["healthy"] and not e["ejected"] for e in inventory["endpoints"])
    assert "souk-cli" in str(status["policy"]["identity"])

    table = system.souk("mesh", "status")
    assert table.returncode == 0, table.stderr
    # Narrow (80 columns, no terminal): long cells wrap, the tables are all there.
    for title in ("identities", "upstreams, as each sidecar sees them", "policy"):
        assert title in table.stdout


def test_each_sidecar_serves_prometheus_stats_and_souk_status_lists_it(
    system: SoukSystem,
) -> None:
    text = _stats(system, _sidecar_of("gateway"))
    assert "# TYPE envoy_cluster_upstream_rq_total counter" in text
    shown = system.souk("status", "--json")
    listed = {i["instance"] for i in json.loads(shown.stdout)["instances"]}
    assert {"gateway-sidecar-1", "catalog-sidecar-2", "mesh-1"} <= listed


def test_killing_inventory_mid_burst_with_the_mesh_on_leaves_everything_agreeing(
    system: SoukSystem,
    reader: httpx.Client,  # noqa: F811 - the fixture imported above
    shoppers: list[httpx.Client],  # noqa: F811
) -> None:
    """test_saga.py's SIGKILL test, unchanged, with every call going through sidecars: the
    gRPC calls to the killed inventory replica fail over to the other one through the mesh.
    (All three victims pass with the mesh on; one is kept here to bound the suite's time.)"""
    saga.test_killing_a_service_mid_burst_leaves_stock_and_payments_agreeing_with_the_orders(
        system, reader, shoppers, "inventory-1"
    )


# The applications behind their sidecars (every service but the public gateway and console).
PRIVATE = [
    "catalog-1",
    "catalog-2",
    "inventory-1",
    "inventory-2",
    "orders-1",
    "billing-1",
    "notifications-1",
    "bff-mobile-1",
    "order-history-1",
    "bff-web-1",
    "identity-1",
    "payment-primary-1",
    "payment-backup-1",
]


def _listening_tcp_ports_of(pid: int) -> set[int]:
    """The TCP ports the process ``pid`` listens on (from /proc: its socket inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN, one of its sockets
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_an_application_opens_no_tcp_port_only_a_private_socket(system: SoukSystem) -> None:
    """Nothing reaches an application but through its sidecar (or as this OS user): it
    listens on no TCP port, its socket is 0600 in a 0700 directory of its own; the public
    gateway keeps its port."""
    for instance in PRIVATE:
        record = system.instance(instance)
        assert record.pid is not None, instance
        assert record.socket is not None, instance
        assert _listening_tcp_ports_of(record.pid) == set(), instance
        path = Path(record.socket)
        assert stat.S_ISSOCK(path.stat().st_mode), instance
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, instance
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, instance
        # The port the instance is known by is its sidecar's inbound port: mTLS only.
        inbound = next(i for i in _mesh_status(system)["instances"] if i["instance"] == instance)
        assert inbound["inbound"].endswith(f":{record.port}"), instance
        with pytest.raises((httpx.TransportError, ssl.SSLError)):
            httpx.get(f"http://127.0.0.1:{record.port}/readyz", timeout=5)
    inventory = system.instance("inventory-1")
    assert (Path(inventory.socket or "").parent / "grpc.sock").exists()  # gRPC: a socket too
    gateway = system.instance("gateway-1")
    assert gateway.socket is None
    assert _listening_tcp_ports_of(gateway.pid or 0) == {gateway.port}


def test_status_probes_and_operator_commands_reach_the_applications_on_their_sockets(
    system: SoukSystem,
) -> None:
    """`souk status` probes each application on its socket, `souk dlq list` and `souk
    resilience` read them there, and so does the console (test_the_console_... above)."""
    shown = json.loads(system.souk("status", "--json").stdout)
    health = {i["instance"]: i["health"] for i in shown["instances"]}
    assert all(health[instance] in {"ok", "unready"} for instance in PRIVATE), health
    assert sum(health[instance] == "ok" for instance in PRIVATE) >= len(PRIVATE) - 2, health
    letters = system.souk("dlq", "list", "--json")
    assert letters.returncode == 0, letters.stderr
    assert json.loads(letters.stdout)["unreachable"] == {}
    table = system.souk("resilience")
    assert table.returncode == 0, table.stderr
    # What `souk resilience` read: every application's /metrics, over its socket.
    found = asyncio.run(resilience.scrape(system.state().instances))
    reachable = {f.instance: f.reachable for f in found}
    assert all(reachable[instance] for instance in PRIVATE), reachable


def test_prometheus_reads_an_applications_metrics_on_its_sidecars_ops_port(
    system: SoukSystem,
) -> None:
    sidecar = system.instance(_sidecar_of("orders"))
    answer = httpx.get(f"{sidecar.url}/metrics", timeout=5)
    assert answer.status_code == 200
    assert "souk_" in answer.text  # the application's own series, not Envoy's


@pytest.fixture(scope="module")
def authority(system: SoukSystem) -> CertificateAuthority:
    """The mesh's CA, as the owner of the data dir can load it (the reason the operator's
    tools may as well use the applications' sockets: this user holds every key anyway)."""
    return CertificateAuthority.load_or_create(system.data_dir / "mesh" / "ca")


def _as(authority: CertificateAuthority, service: str) -> ssl.SSLContext:
    """A TLS client context holding a fresh SVID of ``service`` from the mesh's CA."""
    svid = authority.issue(service_id(service), dt.timedelta(minutes=10))
    context = ssl.create_default_context(cadata=authority.bundle_pem().decode())
    context.check_hostname = False  # SPIFFE identities are URIs, not host names
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with tempfile.TemporaryDirectory() as directory:
        cert, key = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert.write_bytes(svid.certificate_pem)
        key.write_bytes(svid.private_key_pem)
        key.chmod(0o600)
        context.load_cert_chain(cert, key)
    return context


def _through_sidecar(
    system: SoukSystem, instance: str, method: str, route: str, context: ssl.SSLContext
) -> httpx.Response:
    port = system.instance(instance).port  # its sidecar's inbound port
    with httpx.Client(verify=context, timeout=10, trust_env=False) as client:
        return client.request(method, f"https://127.0.0.1:{port}{route}")


# Each internal route: (instance, method, route, a caller the policy refuses, its real caller,
# what the application answers that caller: order-history has no rebuild to show yet).
INTERNAL_ROUTES = [
    ("identity-1", "POST", "/internal/keys/rotate", "gateway", "souk-cli", 200),
    ("identity-1", "GET", "/internal/revocations", "payment-primary", "catalog", 200),
    ("orders-1", "GET", "/internal/dead-letters", "gateway", "souk-cli", 200),
    ("order-history-1", "GET", "/internal/rebuild", "gateway", "souk-cli", 404),
    ("payment-primary-1", "GET", "/v1/simulation", "billing", "souk-cli", 200),
]


@pytest.mark.parametrize(
    "case", INTERNAL_ROUTES, ids=[f"{i}{route}" for i, _, route, *_ in INTERNAL_ROUTES]
)
def test_an_internal_route_answers_through_the_sidecar_only_its_real_caller(
    system: SoukSystem, authority: CertificateAuthority, case: tuple[str, str, str, str, str, int]
) -> None:
    instance, method, route, refused, allowed, answered = case
    denied = _through_sidecar(system, instance, method, route, _as(authority, refused))
    assert denied.status_code == 403, denied.text
    assert denied.headers["content-type"] == "application/problem+json"
    assert "rbac_access_denied" in denied.json()["detail"]
    # The sidecar refused it: the application never saw the request.
    assert "x-envoy-upstream-service-time" not in denied.headers
    let_in = _through_sidecar(system, instance, method, route, _as(authority, allowed))
    # The application answered (its own token checks still apply: zero trust).
    assert "x-envoy-upstream-service-time" in let_in.headers, let_in.text
    assert "rbac_access_denied" not in let_in.text
    assert let_in.status_code == answered, let_in.text
