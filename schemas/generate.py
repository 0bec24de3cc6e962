"""Regenerate the committed ``*_pb2`` modules from the ``.proto`` files.

The generated modules are committed so that nodes (including ones inside
Isaac Sim's own Python) import them with no protoc around. They are made with
the protoc of grpcio-tools 1.64.3 (libprotoc 26.1): protoc's generated code
refuses protobuf runtimes older than itself, and Isaac Sim extensions carry
protobuf 5.26, so the generator is pinned to that line on purpose.

Usage: ``python -m schemas.generate [OUT_DIR]`` (default: in place).
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTOS = ("schemas/messages.proto", "schemas/services.proto")
GENERATOR = "grpcio-tools==1.64.3"


def generate(out_dir: Path) -> list[Path]:
    """Run protoc on every .proto file into ``out_dir`` (mirroring ``schemas/``)."""
    try:
        from grpc_tools import protoc
    except ImportError as exc:  # pragma: no cover - depends on the venv
        raise SystemExit(f"protoc is not installed: pip install '{GENERATOR}'") from exc
    root = Path(__file__).resolve().parent.parent
    (out_dir / "schemas").mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{root}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", *PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed: " + " ".join(args))
    return sorted((out_dir / "schemas").glob("*_pb2.py*"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    for path in generate(target):
        print(path)
