"""``python -m mesh``: the control plane, configured by flags or by the environment `souk up`
sets (MESH_LISTEN, MESH_DATA_DIR, MESH_SETTINGS as JSON, MESH_OPS_PORT)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from pathlib import Path

from mesh.server import run
from mesh.settings import MeshSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="souk-mesh", description=__doc__)
    parser.add_argument(
        "--listen",
        default=os.environ.get("MESH_LISTEN"),
        help="unix:/path or host:port for xDS",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=os.environ.get("MESH_DATA_DIR"),
        help="the CA and the status file live here",
    )
    parser.add_argument(
        "--settings",
        default=os.environ.get("MESH_SETTINGS", "{}"),
        help="the mesh section of souk.yaml, as JSON",
    )
    parser.add_argument(
        "--ops-port",
        type=int,
        default=int(os.environ.get("MESH_OPS_PORT", "0")),
        help="a loopback port answering /readyz and /healthz",
    )
    arguments = parser.parse_args()
    if not arguments.listen or not arguments.data_dir:
        parser.error("--listen and --data-dir (or MESH_LISTEN and MESH_DATA_DIR) are required")
    logging.basicConfig(
        level=logging.INFO,
        format='{"level":"%(levelname)s","logger":"%(name)s","event":"%(message)s"}',
    )
    data_dir = Path(arguments.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = MeshSettings.parse(json.loads(arguments.settings))
    asyncio.run(run(settings, arguments.listen, data_dir, ops_port=arguments.ops_port))


if __name__ == "__main__":
    main()
