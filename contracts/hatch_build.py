"""Hatchling build hook: generate the gRPC and protobuf modules from every ``.proto``.

The generated ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` are build outputs: written
next to their ``.proto`` whenever a wheel or an editable install is built, ignored by git,
and shipped in the wheel as artifacts.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

GENERATED = ["*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py"]


class ProtocBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:  # noqa: ARG002
        # Imported here: grpcio-tools is a build requirement, not a runtime one.
        from grpc_tools import protoc  # noqa: PLC0415

        source_root = Path(self.root) / "src"
        protos = sorted(str(path.relative_to(source_root)) for path in source_root.rglob("*.proto"))
        if not protos:
            return
        well_known_types = files("grpc_tools") / "_proto"
        arguments = [
            "grpc_tools.protoc",
            f"--proto_path={source_root}",
            f"--proto_path={well_known_types}",
            f"--python_out={source_root}",
            f"--pyi_out={source_root}",
            f"--grpc_python_out={source_root}",
            *protos,
        ]
        if protoc.main(arguments) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(protos)}")
        self.app.display_info(f"generated gRPC modules for {', '.join(protos)}")
        build_data["artifacts"].extend(f"/src/**/{pattern}" for pattern in GENERATED)
