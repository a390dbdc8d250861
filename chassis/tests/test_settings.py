"""ServiceSettings: one typed configuration per service, read from prefixed env vars."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict, SettingsError

from chassis import ServiceSettings
from chassis.settings import BrokerSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_")

    service: str = "demo"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DEMO_", "SOUK_")):
            monkeypatch.delenv(name)


def test_a_service_subclass_reads_its_own_prefixed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_PORT", "9123")
    monkeypatch.setenv("DEMO_INSTANCE", "demo-7")
    monkeypatch.setenv("DEMO_LOG_LEVEL", "warning")
    monkeypatch.setenv(
        "DEMO_UPSTREAMS",
        '{"catalog": ["http://127.0.0.1:9001", "https://catalog.example:9002"]}',
    )

    settings = DemoSettings()

    assert settings.port == 9123
    assert settings.instance == "demo-7"
    assert settings.log_level == "warning"
    assert settings.upstreams == {
        "catalog": ["http://127.0.0.1:9001", "https://catalog.example:9002"]
    }


def test_another_services_prefix_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUK_PORT", "9999")
    monkeypatch.setenv("OTHER_PORT", "9998")

    assert DemoSettings().port == 8000
    assert ServiceSettings().port == 9999


def test_an_upstream_that_is_not_an_http_url_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_UPSTREAMS", '{"catalog": ["http://ok:1", "ftp://files.example"]}')

    with pytest.raises(ValidationError, match=r"upstream 'catalog': 'ftp://files.example'"):
        DemoSettings()


def test_upstreams_that_are_not_json_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_UPSTREAMS", "catalog=http://127.0.0.1:9001")

    with pytest.raises(SettingsError, match="upstreams"):
        DemoSettings()


@pytest.mark.parametrize("port", ["-1", "65536", "eighty"])
def test_a_port_outside_the_tcp_range_is_rejected(
    monkeypatch: pytest.MonkeyPatch, port: str
) -> None:
    monkeypatch.setenv("DEMO_PORT", port)

    with pytest.raises(ValidationError, match="port"):
        DemoSettings()


def test_settings_are_immutable() -> None:
    settings = DemoSettings()

    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_the_default_database_is_a_sqlite_file_under_data_dir_named_after_the_service(
    tmp_path: Path,
) -> None:
    settings = DemoSettings(service="orders", data_dir=tmp_path / "state")

    url = settings.database_url_or_default()

    expected = (tmp_path / "state" / "orders.db").resolve()
    assert url == f"sqlite+aiosqlite:///{expected}"


def test_a_relative_data_dir_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    url = DemoSettings().database_url_or_default()

    assert url == f"sqlite+aiosqlite:///{(tmp_path / '.souk' / 'demo.db').resolve()}"


def test_a_configured_database_url_wins_over_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_DATABASE_URL", "postgresql+asyncpg://db.internal/orders")

    assert DemoSettings().database_url_or_default() == "postgresql+asyncpg://db.internal/orders"


def test_instance_id_is_the_given_instance_name() -> None:
    assert DemoSettings(instance="demo-3").instance_id == "demo-3"


def test_instance_id_falls_back_to_service_and_pid() -> None:
    assert DemoSettings().instance_id == f"demo-{os.getpid()}"


@pytest.mark.parametrize(
    ("broker", "server"),
    [
        (
            BrokerSettings("amqp://shop:secret@mq.internal/shop", partitions=16),
            ("mq.internal", 5672),
        ),
        (BrokerSettings("amqps://mq.internal", namespace="staging"), ("mq.internal", 5671)),
        (BrokerSettings("nats://n1"), ("n1", 4222)),
        (BrokerSettings("kafka://k:19092", partitions=3), ("k", 19092)),
        (BrokerSettings.local("embedded", Path("/srv/data")), None),
    ],
)
def test_broker_settings_handed_over_in_the_environment_come_back_the_same(
    monkeypatch: pytest.MonkeyPatch, broker: BrokerSettings, server: tuple[str, int] | None
) -> None:
    # What `souk up` writes for each instance, and what the instance reads back.
    for name, value in broker.env("DEMO_").items():
        monkeypatch.setenv(name, value)

    assert DemoSettings().broker() == broker
    assert broker.server() == server


def test_a_local_broker_is_on_its_usual_port_or_in_the_data_dir() -> None:
    assert BrokerSettings.local("nats", Path("/srv")).url == "nats://127.0.0.1:4222"
    assert BrokerSettings.local("rabbitmq", Path("/srv")).server() == ("127.0.0.1", 5672)
    embedded = BrokerSettings.local("embedded", Path("/srv/data"), partitions=2)
    assert (embedded.url, embedded.partitions) == ("embedded:///srv/data/broker", 2)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("nats://", "names no host"), ("kafka://k:99999", "has an invalid port")],
)
def test_a_broker_url_without_a_usable_server_says_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BrokerSettings(url).server()
