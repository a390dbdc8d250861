"""The image's Containerfile obeys the rules a reviewer checks, read from the file itself (no
container engine runs on CI): a pinned slim base, two stages, the compilers only in the
first, a non-root user, the HTTP and gRPC ports declared, a health check on /readyz, and every
unit the manifests run installed in it."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from souk.kubernetes import GRPC_PORT, HTTP_PORT, IMAGE_TAG, deployed_services
from souk.topology import load_topology

from .conftest import ROOT

CONTAINERFILE = ROOT / "deploy" / "images" / "Containerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "git", "cargo", "rustc", "-dev")
# An exact release (3.11.14, not 3.11 or latest) of a slim variant, or a digest.
PINNED_SLIM = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+-slim[\w.-]*(@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse(text: str) -> list[list[Instruction]]:
    """The instructions of each stage (continuation lines joined, comments dropped)."""
    stages: list[list[Instruction]] = []
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        if not stages:
            raise ValueError(f"{instruction.keyword} before the first FROM")
        stages[-1].append(instruction)
        logical = ""
    return stages


def problems(text: str) -> list[str]:
    """What a reviewer would refuse in a Containerfile."""
    found: list[str] = []
    stages = parse(text)
    if len(stages) < 2:
        found.append("one stage: build tools would stay in the image")
    for stage in stages:
        image = stage[0].arguments.split()[0]
        if not PINNED_SLIM.match(image):
            found.append(f"base {image} is not a pinned slim release")
    final = stages[-1]
    runs = " ".join(i.arguments for i in final if i.keyword == "RUN")
    installed = re.findall(r"(?:apt-get|apt) install ([^&;]*)", runs)
    tools = [t for words in installed for t in words.split() if t.endswith(BUILD_TOOLS)]
    if tools:
        found.append(f"the final stage installs build tools: {tools}")
    users = [i.arguments.split(":")[0] for i in final if i.keyword == "USER"]
    if not users or users[-1] in ("root", "0"):
        found.append("the final stage runs as root")
    exposed = {p.split("/")[0] for i in final if i.keyword == "EXPOSE" for p in i.arguments.split()}
    found.extend(
        f"port {port} is not exposed" for port in (HTTP_PORT, GRPC_PORT) if str(port) not in exposed
    )
    checks = [i.arguments for i in final if i.keyword == "HEALTHCHECK"]
    if not any("/readyz" in check for check in checks):
        found.append("no HEALTHCHECK on /readyz")
    return found


def test_the_containerfile_obeys_the_rules() -> None:
    assert problems(CONTAINERFILE.read_text()) == []


def test_the_rules_refuse_a_careless_containerfile() -> None:
    careless = """
FROM python:latest
RUN apt-get update && apt-get install -y gcc libpq-dev
COPY . /app
EXPOSE 8000
CMD ["python", "-m", "gateway"]
"""
    assert problems(careless) == [
        "one stage: build tools would stay in the image",
        "base python:latest is not a pinned slim release",
        "the final stage installs build tools: ['gcc', 'libpq-dev']",
        "the final stage runs as root",
        "port 50051 is not exposed",
        "no HEALTHCHECK on /readyz",
    ]


def test_a_floating_tag_or_a_full_image_is_not_a_pinned_slim_base() -> None:
    for base in ("python:3.11-slim", "python:3.11.14", "python:3.11.14-bookworm"):
        assert f"base {base} is not a pinned slim release" in problems(
            f"FROM {base} AS build\nFROM {base}\nUSER 1\nEXPOSE 8000 50051\n"
            'HEALTHCHECK CMD ["curl", "/readyz"]\n'
        )


def test_every_unit_the_manifests_run_is_installed_in_the_image() -> None:
    build = parse(CONTAINERFILE.read_text())[0]
    installs = " ".join(
        i.arguments for i in build if i.keyword == "RUN" and "pip install" in i.arguments
    )
    installed = {
        word.strip('"').rstrip("/")
        for word in shlex.split(installs)
        if word.startswith(("./", '"./'))
    }
    topology = load_topology(ROOT / "cli" / "src" / "souk" / "default_topology.yaml")
    for service in deployed_services(topology):
        module = topology.module_of(service)
        packages = [p for p in installed if (ROOT / p / "src" / module).is_dir()]
        assert packages, f"{service} runs `python -m {module}`, which no installed package holds"


def test_the_image_runs_a_unit_by_its_module_as_the_manifests_ask() -> None:
    final = parse(CONTAINERFILE.read_text())[-1]
    (entrypoint,) = [json.loads(i.arguments) for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoint == ["python", "-m"]
    labels = " ".join(i.arguments for i in final if i.keyword == "LABEL")
    assert f'org.opencontainers.image.version="{IMAGE_TAG}"' in labels


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = set((ROOT / ".containerignore").read_text().split())
    assert {".venv", ".souk", ".git"} <= ignored
