from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def mesh_dir() -> Iterator[Path]:
    """A short directory of the module's own: Unix socket paths must stay under ~100 bytes."""
    directory = Path(tempfile.mkdtemp(prefix="mesh-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
