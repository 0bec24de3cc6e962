"""The committed generated modules are current and load on the oldest runtime we promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schemas.generate import generate

ROOT = Path(__file__).resolve().parent.parent
FLOOR = Path(sys.prefix) / "protobuf-floor"


def test_regenerating_gives_the_committed_files(tmp_path: Path) -> None:
    for fresh in generate(tmp_path):
        committed = ROOT / "schemas" / fresh.name
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed} is stale: run `python -m schemas.generate` and commit the result"
        )


def test_generated_code_loads_on_protobuf_5_26_0() -> None:
    """Isaac Sim's extensions bundle protobuf 5.26.0; the schemas must load there."""
    if not (FLOOR / "google" / "protobuf").is_dir():
        pytest.fail(f"protobuf 5.26.0 is not installed in {FLOOR}: run `make test` (its set-up installs it)")
    code = (
        "import google.protobuf as pb; assert pb.__version__ == '5.26.0', pb.__version__\n"
        "from schemas import messages_pb2, services_pb2\n"
        "s = messages_pb2.JointState(seq=3, position=[1.0]); assert messages_pb2.JointState.FromString(s.SerializeToString()) == s\n"
        "from schemas import foxglove; import bus.registry, bus.frames\n"
        "i = foxglove.RawImage(width=2, data=b'ab'); assert foxglove.RawImage.FromString(i.SerializeToString()) == i\n"
        "print(services_pb2.NodeInfo.DESCRIPTOR.full_name, pb.__version__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": f"{FLOOR}:{ROOT}", "PATH": "/usr/bin:/bin"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "roarm.v1.NodeInfo 5.26.0"


def test_bus_and_schemas_import_without_heavy_packages() -> None:
    """Inside Isaac Sim's Python only zmq, msgpack and protobuf can be assumed."""
    code = (
        "import sys, bus.node, bus.service, bus.latency, schemas.services_pb2\n"
        "heavy = [m for m in ('mujoco', 'onnxruntime', 'matplotlib', 'mcap', 'click', 'yaml') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
