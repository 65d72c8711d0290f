"""The committed generated code is exactly what `make proto` produces from protos/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.proto_include import include_dir

REPO = Path(__file__).resolve().parents[2]
GENERATED = (
    "room_service_pb2.py",
    "room_service_pb2_grpc.py",
    "room_service_pb2.pyi",
    "room_service_pb2_grpc.pyi",
)


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            "protos",
            "-I",
            str(include_dir()),
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--mypy_out={tmp_path}",
            f"--mypy_grpc_out={tmp_path}",
            "protos/meeting/v1/room_service.proto",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "meeting" / "v1" / name).read_text()
        committed = (REPO / "protos" / "meeting" / "v1" / name).read_text()
        assert fresh == committed, f"{name} is stale: run `make proto` and commit the result"


def test_every_proto_element_is_commented() -> None:
    lines = (REPO / "protos" / "meeting" / "v1" / "room_service.proto").read_text().splitlines()
    undocumented = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        is_element = stripped.startswith(("message ", "enum ", "service ", "rpc ", "oneof ")) or (
            "=" in stripped
            and stripped.endswith(";")
            and not stripped.startswith(("syntax", "package", "option"))
        )
        if is_element and not lines[index - 1].strip().startswith("//"):
            undocumented.append(f"{index + 1}: {stripped}")
    assert not undocumented, "uncommented proto elements:\n" + "\n".join(undocumented)
