"""hil bag check-policy over many bags: in parallel (process pool or Ray), one summary, one exit status."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from policy_node.policy.base import Observation
from policy_node.policy.load import load_policy
from tests.bag_factory import DT, kinematic_run
from tests.conftest import HIL


def bags(tmp_path: Path) -> list[Path]:
    """Two honest runs of scripted:ik, one with a different command recorded at step 57, one not a bag."""
    def driven(perturb: int = -1):
        policy = load_policy("scripted:ik", dt=DT)

        def act(k, state, goal):
            target = policy.act(Observation.from_state(state, goal))
            return target + np.array([0, 0, 0.01, 0, 0, 0]) if k == perturb else target
        return act

    made = [kinematic_run(tmp_path / "a.mcap", driven()), kinematic_run(tmp_path / "b.mcap", driven(57)),
            kinematic_run(tmp_path / "c.mcap", driven(), steps=60)]
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"not a bag at all")
    return [*made, junk]


def check_many(paths: list[Path], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, "bag", "check-policy", *map(str, paths), "--model", "scripted:ik", *extra],
                          capture_output=True, text=True, timeout=300)


def test_many_bags_in_a_process_pool_one_summary(tmp_path: Path) -> None:
    paths = bags(tmp_path)
    result = check_many(paths, "--jobs", "2")
    assert result.returncode == 2, result.stdout + result.stderr  # one bag could not be checked at all
    lines = result.stdout.splitlines()
    assert lines[0] == "check-policy: scripted:ik against 4 bags (atol 1e-06, executor local)"
    rows = {line.split()[0]: line.split()[1] for line in lines[3:] if line.startswith(str(tmp_path))}
    assert rows == {str(paths[0]): "pass", str(paths[1]): "FAIL", str(paths[2]): "pass", str(paths[3]): "ERROR"}
    assert "step 57 (obs_seq 57" in result.stdout and "is not an MCAP file" in result.stdout
    assert lines[-1] == "passed 2, failed 1, could not check 1"
    # Without the broken one: 1 (a policy diverges); only honest bags: 0.
    assert check_many(paths[:3]).returncode == 1
    assert check_many([paths[0], paths[2]]).returncode == 0
    data = json.loads(check_many(paths[:3], "--json").stdout)
    assert data["exit_code"] == 1 and [b["verdict"] for b in data["bags"]] == ["pass", "FAIL", "pass"]
    assert data["bags"][1]["first"]["step"] == 57 and data["bags"][2]["steps"] == 60


def test_one_bag_keeps_the_single_bag_report(tmp_path: Path) -> None:
    paths = bags(tmp_path)
    result = check_many(paths[1:2])
    assert result.returncode == 1 and "FAIL: first divergence at step 57" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="Ray is not installed: pip install 'roarm-hil[ray]' (make test installs it)")
@pytest.mark.slow
def test_many_bags_as_ray_tasks_give_the_same_verdicts(tmp_path: Path) -> None:
    paths = bags(tmp_path)
    local = json.loads(check_many(paths, "--json").stdout)
    result = check_many(paths, "--json", "--executor", "ray", "--jobs", "2")
    assert result.returncode == 2, result.stdout + result.stderr
    on_ray = json.loads(result.stdout)
    assert on_ray["executor"] == "ray"
    strip = [{k: v for k, v in b.items() if k not in ("wall_s", "where")} for b in local["bags"]]
    assert [{k: v for k, v in b.items() if k not in ("wall_s", "where")} for b in on_ray["bags"]] == strip
