"""`souk up` end to end with the fake service: contract, restarts, readiness, shutdown, down.

Every system is booted through souk.testing.SoukSystem, the helper the platform's e2e tests use,
so these tests also cover it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from souk.plan import port_is_free
from souk.state import InstanceRecord, InstanceState, pid_alive, read_state
from souk.testing import SoukSystem, SoukSystemError, free_port

FakeSpec = Callable[..., dict[str, Any]]
MakeSystem = Callable[..., SoukSystem]


def get_json(url: str) -> Any:
    response = httpx.get(url, timeout=5, trust_env=False)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, fake: FakeSpec) -> Iterator[SoukSystem]:
    """gateway -> catalog x2, shared by the tests that only look."""
    topology = {
        "services": {
            "gateway": fake(
                "gateway",
                upstreams=["catalog"],
                env={"EXTRA_COUNT": 3, "EXTRA_FLAGS": {"beta": True}, "EXTRA_TEXT": "a b"},
            ),
            # Slow to start: `up` (and SoukSystem.start) must wait for it.
            "catalog": fake("catalog", replicas=2, env={"FAKE_START_DELAY": "0.5"}),
        }
    }
    with SoukSystem(topology, tmp_path_factory.mktemp("system")) as running:
        yield running


def test_instances_receive_the_process_contract(system: SoukSystem) -> None:
    catalogs = system.instances("catalog")
    gateway = get_json(system.gateway_url + "/whoami")
    assert gateway["instance"] == "gateway-1"
    assert gateway["host"] == "127.0.0.1"
    assert gateway["port"] == system.instances("gateway")[0].port
    assert gateway["data_dir"] == str(system.data_dir)
    assert gateway["upstreams"] == {"catalog": [catalogs[0].url, catalogs[1].url]}
    assert gateway["env"]["PYTHONUNBUFFERED"] == "1"
    assert gateway["env"]["EXTRA_COUNT"] == "3"
    assert json.loads(gateway["env"]["EXTRA_FLAGS"]) == {"beta": True}
    assert gateway["env"]["EXTRA_TEXT"] == "a b"
    for record in catalogs:
        whoami = get_json(record.url + "/whoami")
        assert (whoami["instance"], whoami["pid"]) == (record.instance, record.pid)
        assert whoami["upstreams"] == {}
        assert "EXTRA_COUNT" not in whoami["env"]


def test_state_file_describes_every_instance(system: SoukSystem) -> None:
    state = system.state()
    assert state.pid == system.orchestrator_pid
    assert state.data_dir == str(system.data_dir)
    assert [r.instance for r in state.instances] == ["gateway-1", "catalog-1", "catalog-2"]
    for record in state.instances:
        assert record.state is InstanceState.READY
        assert record.url == f"http://127.0.0.1:{record.port}"
        assert Path(record.log) == system.data_dir / "logs" / f"{record.instance}.log"
        assert pid_alive(record.pid or 0)
    gateway_port = system.instances("gateway")[0].port
    banner = f"Souk is up: http://localhost:{gateway_port}"
    # The state file says "ready" a moment before the banner is printed.
    output = system.wait_until(lambda: banner in system.output() and system.output(), timeout=5)
    assert output.index("catalog-2 ready") < output.index("Souk is up")


def test_status_json_probes_live_health(system: SoukSystem) -> None:
    result = system.souk("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["pid"] == system.orchestrator_pid
    assert {(i["instance"], i["state"], i["health"]) for i in status["instances"]} == {
        ("gateway-1", "ready", "ok"),
        ("catalog-1", "ready", "ok"),
        ("catalog-2", "ready", "ok"),
    }


def test_status_table(system: SoukSystem) -> None:
    result = system.souk("status")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "catalog-2" in line]
    assert len(rows) == 1
    assert "ready" in rows[0]
    assert "ok" in rows[0]


def test_logs_are_prefixed_by_instance(system: SoukSystem) -> None:
    result = system.souk("logs", "catalog")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert {line.split(" | ")[0].strip() for line in lines} == {"catalog-1", "catalog-2"}
    assert any("INFO  listening instance=catalog-2" in line for line in lines)


def test_second_up_on_the_same_data_dir_is_refused(system: SoukSystem, fake: FakeSpec) -> None:
    other = system.directory / "other.yaml"
    other.write_text(json.dumps({"services": {"solo": fake("solo")}}), encoding="utf-8")
    result = system.souk("up", "--topology", str(other), timeout=20)
    assert result.returncode != 0
    assert f"another `souk up` (pid {system.orchestrator_pid}) is already running" in result.stderr
    assert system.state().pid == system.orchestrator_pid
    assert not (system.data_dir / "logs" / "solo-1.log").exists()


def test_killed_instance_is_restarted_on_the_same_port(
    make_system: MakeSystem, fake: FakeSpec
) -> None:
    topology = {"services": {"catalog": fake("catalog", replicas=2)}}
    with make_system(topology) as system:
        before = system.instance("catalog-1")
        killed = system.kill("catalog-1", signal.SIGKILL)

        def restarted() -> InstanceRecord | None:
            record = system.instance("catalog-1")
            return record if record.restarts == 1 and record.state is InstanceState.READY else None

        after = system.wait_until(restarted, message="catalog-1 restarted and ready")
        assert after.port == before.port
        assert after.pid not in (None, killed)
        assert not pid_alive(killed)
        assert get_json(after.url + "/whoami")["pid"] == after.pid
        assert system.instance("catalog-2").restarts == 0
        assert "catalog-1 was killed by SIGKILL; restarting in 0.5s" in system.output()


def test_sigterm_stops_every_child_and_frees_ports(make_system: MakeSystem, fake: FakeSpec) -> None:
    fixed = free_port()
    topology = {
        "services": {
            "gateway": fake("gateway", port=fixed, upstreams=["catalog"]),
            "catalog": fake("catalog", replicas=2),
        }
    }
    system = make_system(topology).start()
    state = system.state()
    pids = [record.pid for record in state.instances]
    ports = [record.port for record in state.instances]
    assert fixed in ports
    assert system.stop() == 0  # also asserts that no pid it ever saw is alive
    assert not any(pid_alive(pid or 0) for pid in pids)
    assert all(port_is_free(port) for port in ports)
    final = read_state(system.data_dir)
    assert final is not None
    assert final.stopped_at is not None
    assert {record.state for record in final.instances} == {InstanceState.STOPPED}
    output = system.output()
    # Callers stop before the services they call.
    assert output.index("gateway-1 stopped") < output.index("catalog-1 stopped")


def test_down_stops_a_running_up(
    make_system: MakeSystem, fake: FakeSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A topology given as a path relative to the test's cwd, as e2e tests may do.
    (tmp_path / "topo.yaml").write_text(json.dumps({"services": {"catalog": fake("catalog")}}))
    monkeypatch.chdir(tmp_path)
    system = make_system("topo.yaml").start()
    child = system.instance("catalog-1").pid or 0
    result = system.souk("down")
    assert result.returncode == 0, result.stderr
    assert f"souk stopped (pid {system.orchestrator_pid}" in result.stdout
    assert system.process is not None
    assert system.process.wait(5) == 0
    assert not pid_alive(child)
    status = system.souk("status")
    assert status.returncode != 0
    assert "souk is not running" in status.stderr
    again = system.souk("down")
    assert again.returncode == 0
    assert "nothing to stop" in again.stdout


def test_readiness_timeout_names_the_instance_and_shows_its_log(
    make_system: MakeSystem, fake: FakeSpec
) -> None:
    topology = {
        "services": {
            "gateway": fake("gateway", upstreams=["catalog"]),
            "catalog": fake("catalog", env={"FAKE_NEVER_READY": "1"}),
        }
    }
    system = make_system(topology, ready_timeout=1.5)
    started = time.monotonic()
    with pytest.raises(SoukSystemError) as caught:
        system.start()
    assert time.monotonic() - started < 10
    assert system.process is not None
    assert system.process.returncode == 1
    output = system.output()
    assert (
        "error: catalog-1 did not become ready within 1.5s (state starting, health unready"
        in output
    )
    assert "never ready on purpose" in output  # the tail of its log
    assert "gateway-1 did not" not in output
    assert "catalog-1 did not become ready" in str(caught.value)
    assert system.seen_pids
    assert not any(pid_alive(pid) for pid in system.seen_pids)


def test_instance_that_keeps_exiting_fails_startup_fast(
    make_system: MakeSystem, fake: FakeSpec
) -> None:
    topology = {"services": {"catalog": fake("catalog", env={"FAKE_EXIT_CODE": "3"})}}
    system = make_system(topology, ready_timeout=30)
    started = time.monotonic()
    with pytest.raises(SoukSystemError):
        system.start()
    assert time.monotonic() - started < 10
    output = system.output()
    assert "catalog-1 exited with code 3; restarting in 0.5s" in output
    assert (
        "catalog-1 exited 3 times before becoming ready (last: exited with code 3); giving up"
        in output
    )
    assert "failing on purpose" in output
    assert system.process is not None
    assert system.process.returncode == 1


def test_instance_ignoring_sigterm_is_killed_after_the_grace(
    make_system: MakeSystem, fake: FakeSpec
) -> None:
    topology = {"services": {"stubborn": fake("stubborn", env={"FAKE_IGNORE_SIGTERM": "1"})}}
    system = make_system(topology, grace=0.5).start()
    pid = system.instance("stubborn-1").pid or 0
    started = time.monotonic()
    assert system.stop() == 0
    assert time.monotonic() - started < 5
    assert not pid_alive(pid)
    assert "stubborn-1 still running after 0.5s; sending SIGKILL" in system.output()


def test_second_signal_kills_at_once(make_system: MakeSystem, fake: FakeSpec) -> None:
    topology = {"services": {"stubborn": fake("stubborn", env={"FAKE_IGNORE_SIGTERM": "1"})}}
    system = make_system(topology, grace=30).start()
    pid = system.instance("stubborn-1").pid or 0
    started = time.monotonic()
    os.kill(system.orchestrator_pid, signal.SIGINT)
    system.wait_until(lambda: "got SIGINT, stopping" in system.output(), message="stopping")
    os.kill(system.orchestrator_pid, signal.SIGINT)
    assert system.process is not None
    assert system.process.wait(10) == 0
    assert time.monotonic() - started < 10
    assert not pid_alive(pid)
    assert "stubborn-1 killing now; sending SIGKILL" in system.output()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_children_die_with_a_sigkilled_orchestrator(
    make_system: MakeSystem, fake: FakeSpec
) -> None:
    system = make_system({"services": {"catalog": fake("catalog", replicas=2)}}).start()
    pids = [record.pid or 0 for record in system.state().instances]
    assert system.process is not None
    system.process.kill()
    system.process.wait(5)
    system.wait_until(
        lambda: not any(pid_alive(pid) for pid in pids),
        timeout=5,
        message="orphans gone",
        while_running=False,
    )
    system.stop()
