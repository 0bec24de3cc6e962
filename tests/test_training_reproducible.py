"""``hil policy train-reach --seed N`` writes the same bytes on any machine (same numpy, MuJoCo, onnx).

The whole training (about four minutes on one core) is too slow for the
suite, so a short variant of the same pipeline (expert rollouts on MuJoCo,
behaviour cloning, one DAgger round, ONNX export) runs twice in separate
processes: once as this machine runs it, once as another CPU would, with
OpenBLAS forced to an old kernel (OPENBLAS_CORETYPE=Nehalem: no AVX, no
FMA), numpy's CPU-specific vector code switched off
(NPY_DISABLE_CPU_FEATURES) and a different thread count. Before the
training avoided BLAS and numpy's vector math, these two wrote different
files (and a user's retrained reach.onnx differed from the committed one in
the fifth digit of its weights). The committed policies/reach.onnx is checked
to be what the full training writes with the committed code by its recorded
seed and environment (``roarm.train_env``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SHORT = """\
import sys
from pathlib import Path
from tools.training.train_reach import TrainConfig, export, train
cfg = TrainConfig(seed=3, episode_steps=60, expert_episodes=6, dagger_rounds=1, dagger_episodes=3, epochs=3,
                  dagger_epochs=2)
mlp, spec = train(cfg, log=lambda text: None)
export(mlp, spec, Path(sys.argv[1]), cfg.seed)
"""


def train_short(out: Path, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-c", SHORT, str(out)], capture_output=True, text=True, cwd=ROOT,
                            timeout=600, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_the_same_seed_gives_the_same_file_on_another_cpu(tmp_path: Path) -> None:
    from numpy._core._multiarray_umath import __cpu_dispatch__

    here = train_short(tmp_path / "here.onnx", {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    elsewhere = train_short(tmp_path / "elsewhere.onnx", {
        "OPENBLAS_CORETYPE": "Nehalem", "NPY_DISABLE_CPU_FEATURES": " ".join(__cpu_dispatch__),
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    assert here == elsewhere


def test_the_file_records_what_its_bytes_depend_on(tmp_path: Path) -> None:
    train_short(tmp_path / "m.onnx", {})
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert model.producer_name == "roarm-hil train-reach" and model.producer_version == "1"
    assert model.ir_version == 8 and [o.version for o in model.opset_import] == [17]
    assert meta["roarm.train_seed"] == "3"
    assert meta["roarm.train_env"].startswith(f"numpy {np.__version__}, mujoco ")


def test_the_committed_reach_model_states_its_seed_and_environment() -> None:
    model = onnx.load(str(ROOT / "policies" / "reach.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["roarm.train_seed"] == "0" and "mujoco" in meta["roarm.train_env"]
