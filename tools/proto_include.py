"""Prints the directory holding google/rpc/*.proto: the installed googleapis-common-protos
ships the .proto files beside their generated modules, so protoc reads the very
definitions the runtime's `google.rpc` modules were made from (no copy of them here)."""

from __future__ import annotations

from pathlib import Path

from google.rpc import status_pb2


def include_dir() -> Path:
    """The root to pass to protoc's -I for `import "google/rpc/status.proto"`."""
    return Path(status_pb2.__file__).resolve().parents[2]


if __name__ == "__main__":
    print(include_dir())
