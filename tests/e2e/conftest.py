"""One Souk system for the whole end-to-end suite, booted exactly as `souk up` boots it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
import yaml

from souk.testing import SoukSystem, free_port


def default_topology() -> dict[str, Any]:
    """The topology `souk up` runs by default, with the gateway moved to a free port."""
    text = resources.files("souk").joinpath("default_topology.yaml").read_text(encoding="utf-8")
    topology: dict[str, Any] = copy.deepcopy(yaml.safe_load(text))
    topology.pop("data_dir", None)
    topology["services"]["gateway"]["port"] = free_port()
    return topology


@pytest.fixture(scope="session")
def souk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoukSystem]:
    """The default system (gateway + two catalog replicas); stopping it must leave no process."""
    with SoukSystem(
        default_topology(), tmp_path_factory.mktemp("souk"), ready_timeout=60
    ) as system:
        yield system


@pytest.fixture
def gateway(souk: SoukSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=souk.gateway_url, timeout=10.0) as client:
        yield client
