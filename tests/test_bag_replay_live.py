"""``hil bag replay --max`` into a live policy: warned that states will be
dropped, and told how many the policy answered. Real processes."""

from __future__ import annotations

import re
import subprocess

from tests.bag_factory import synthetic_bag
from tests.conftest import HIL, wait_ready


def test_replay_max_into_a_live_policy_warns_and_counts_answers(procs, zctx, endpoints, run_dir, tmp_path):
    bag = synthetic_bag(tmp_path / "run.mcap", steps=300, provenance={"dt": "0.01", "schema_version": "1.0"},
                        period_ns=10_000_000)
    # without a policy: no warning
    alone = subprocess.run([HIL, "bag", "replay", str(bag), "--max", "--settle", "0", "--run-dir", str(run_dir)],
                           capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0, alone.stderr
    assert "warning" not in alone.stderr and "answered" not in alone.stdout

    procs.hil("node", "policy", "--scripted", "ik", "--run-dir", str(run_dir))
    wait_ready(zctx, endpoints, "policy", 60.0).close()
    replay = subprocess.run([HIL, "bag", "replay", str(bag), "--max", "--wait-subscribers", "1", "--wait-timeout",
                             "60", "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    assert "warning: a live policy" in replay.stderr and "dropped" in replay.stderr, replay.stderr
    assert "300 states" in replay.stderr and "without --max" in replay.stderr
    found = re.search(r"the policy answered (\d+) of 300 states", replay.stdout)
    assert found, replay.stdout
    assert int(found.group(1)) < 300
