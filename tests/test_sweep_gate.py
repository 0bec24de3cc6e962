"""A real sweep whose policy misses one goal in ten: the rate, its interval and the gate.

The scenario randomizes the mock arm's actuator gain widely (``actuator_gain_scale:
0.9``: gain drawn in [0.1, 1.9] per seed); a weak arm tracks slowly and the
goal's timeout is set so that about one seed in ten cannot make it. Nothing
is faked: each cell is a real ``hil run`` with its own robot and policy
processes, judged on the robot's clock.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from scenarios.stats import wilson

Procs = Any

ONE_IN_TEN = """\
name: one_in_ten
description: a weak arm (low actuator gain) is too slow for the timeout, about one seed in ten.
robot: {target: mock, mode: lockstep, dt: 0.02}
policy: {scripted: ik}
randomization:
  actuator_gain_scale: 0.9
goals:
  - id: left_low
    tcp: [0.328, 0.179, 0.194]
    tolerance_mm: 10
    timeout_s: 1.15
assertions:
  success_rate: {min: 0.95, confidence: 0.95}
"""


def run_hil(procs: Procs, *args: str, timeout_s: float = 300) -> tuple[int, str, str]:
    proc = procs.hil("run", *args)
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
def test_a_policy_missing_one_goal_in_ten_reports_it_and_fails_the_gate(procs: Procs, tmp_path: Path) -> None:
    scenario = tmp_path / "one_in_ten.yaml"
    scenario.write_text(ONE_IN_TEN)
    out = tmp_path / "sweep"
    code, stdout, stderr = run_hil(procs, str(scenario), "--seeds", "2..11", "--out", str(out), "--jobs", "2")
    assert code == 1, stdout + stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["outcome"] == "fail" and summary["exit_code"] == 1
    goal = summary["goals"][0]
    missed = goal["runs"] - goal["reached"]
    assert goal["runs"] == 10 and 1 <= missed <= 3, goal  # about one in ten (1 of these 10 seeds)
    assert goal["interval"] == pytest.approx(list(wilson(goal["reached"], 10, 0.95)))
    low, high = goal["interval"]
    assert low < goal["rate"] < high and low < 0.95
    gate = summary["gate"]
    assert gate["passed"] is False and gate["checks"][0]["lower"] == pytest.approx(low)
    # Every cell ran to its end: the misses are goal verdicts, not crashes.
    assert {c["outcome"] for c in summary["cells"]} <= {"pass", "fail"}
    failed_seeds = sorted(c["seed"] for c in summary["cells"] if c["failed"] == ["goal:left_low"])
    assert len(failed_seeds) == missed
    assert summary["failures"][0]["count"] == missed
    assert sorted(c["seed"] for c in summary["failures"][0]["cells"]) == failed_seeds
    worst = goal["final_error"]["worst_seed"]
    assert worst in failed_seeds and goal["final_error"]["worst"] > 10.0  # mm: beyond the tolerance
    assert goal["time_to_reach_s"]["count"] == goal["reached"] and goal["time_to_reach_s"]["worst"] <= 1.15
    # One combined JUnit file: a case per cell and goal, a run case per cell, the gate's case.
    suites = ET.parse(out / "junit.xml").getroot()
    cases = [c for s in suites for c in s.findall("testcase")]
    goal_cases = [c for c in cases if c.get("name") == "goal:left_low"]
    assert len(goal_cases) == 10 and sum(c.find("failure") is not None for c in goal_cases) == missed
    assert len([c for c in cases if c.get("name") == "run"]) == 10
    gate_case = next(c for c in cases if c.get("name") == "mock:left_low")
    assert gate_case.find("failure") is not None
    # The table says it all, with the interval and the gate.
    assert f"{goal['reached']}/10" in stdout and "gate success_rate: 95% lower bound >= 0.95 per goal: FAIL" in stdout
    # The worst seed, re-run alone, misses the same goal.
    code, stdout, stderr = run_hil(procs, str(scenario), "--seed", str(worst), "--out", str(tmp_path / "alone"))
    assert code == 1, stdout + stderr
    report = json.loads((tmp_path / "alone" / "report.json").read_text())
    assert [v["name"] for v in report["verdicts"] if not v["passed"]] == ["goal:left_low"]
