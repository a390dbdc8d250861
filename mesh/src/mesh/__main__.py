"""``python -m mesh --listen unix:PATH --data-dir DIR --settings FILE``: the control plane."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from pathlib import Path

from mesh.server import MeshSettings, run


def main() -> None:
    parser = argparse.ArgumentParser(prog="souk-mesh", description=__doc__)
    parser.add_argument("--listen", required=True, help="unix:/path or host:port for xDS")
    parser.add_argument("--data-dir", required=True, type=Path, help="the CA and status live here")
    parser.add_argument("--settings", type=Path, help="the mesh section of souk.yaml, as JSON")
    arguments = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO,
        format='{"level":"%(levelname)s","logger":"%(name)s","event":"%(message)s"}',
    )
    raw = json.loads(arguments.settings.read_text()) if arguments.settings else {}
    arguments.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(MeshSettings.parse(raw), arguments.listen, arguments.data_dir))


if __name__ == "__main__":
    main()
