"""`souk chaos restart-broker` on a NATS server this module owns: the broker restarted
mid-burst, then every invariant asked of the services, on one system booted once.

Never the machine's shared NATS (127.0.0.1:4222): a private ``nats-server`` with JetStream
on a free port and a store of its own (:class:`souk.testing.NatsServer`), kept by the test
as a service manager would keep it, so the scenario's ``--broker-restart-command`` may stop
it and it comes back on the same port and store. Under CI=true a missing ``nats-server`` is
a failure; elsewhere the module skips, naming it.

RabbitMQ is not restarted here: a private RabbitMQ node (its own node name, ports, Mnesia
and log directories) boots in 40-45 s on a loaded 2-core machine, and once more for the
restart, where a NATS server takes well under a second; `souk chaos restart-broker
--broker-restart-command "systemctl restart rabbitmq-server"` covers a RabbitMQ by hand.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from collections.abc import Iterator

import pytest

from souk.chaos import INVARIANTS
from souk.testing import NatsMissingError, NatsServer, SoukSystem

from .conftest import default_topology

BURST = ["--burst", "20", "--concurrency", "4", "--customers", "3", "--settle", "120"]


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    try:
        server = NatsServer(tmp_path_factory.mktemp("nats-server"), down_seconds=1.0)
    except NatsMissingError as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; it is required under CI=true")
        pytest.skip(str(missing))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def system(nats: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoukSystem]:
    topology = default_topology()
    topology["broker"] = {
        "kind": "nats",
        "url": nats.url(),
        "namespace": f"chaos{secrets.token_hex(3)}",
    }
    # Generous: at a load average of 50+ on 2 cores identity alone took over 60 s to be ready.
    system = SoukSystem(topology, tmp_path_factory.mktemp("souk-chaos-nats"), ready_timeout=150)
    system.start()
    try:
        yield system
    finally:
        system.stop(timeout=90)


def test_a_broker_restarted_mid_burst_loses_nothing(system: SoukSystem, nats: NatsServer) -> None:
    before = nats.pid
    ran = system.souk(
        "chaos",
        "restart-broker",
        *BURST,
        "--broker-restart-command",
        shlex.join(nats.restart_command),
        "--json",
        timeout=420,
    )
    evidence = f"exit {ran.returncode}\n{ran.stdout}\n{ran.stderr[-3000:]}"
    assert ran.returncode == 0, evidence
    [outcome] = json.loads(ran.stdout)
    assert outcome["scenario"] == "restart-broker", evidence
    verdicts = {name: check["verdict"] for name, check in outcome["checks"].items()}
    assert verdicts == dict.fromkeys(INVARIANTS, "PASS"), evidence
    # The broker really went away and came back: another process, on the same port.
    assert nats.starts == 2, evidence
    assert nats.pid not in (None, before), evidence
    assert "restart-nats" in outcome["fault"], evidence  # the command the test gave
    # ... and the services noticed and carried on with the new one.
    for service in ("orders-1", "billing-1", "notifications-1"):
        said = system.log_tail(service, 2000)
        assert any("reconnected to NATS" in line for line in said), f"{service}: {said[-5:]}"
