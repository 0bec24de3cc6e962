"""Scenario files: every kind of mistake is reported with file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.schema import ScenarioError, load, loads

ROOT = Path(__file__).resolve().parent.parent
HIL = str(Path(sys.executable).with_name("hil"))

GOOD = """\
name: t
robot: {target: mock, dt: 0.02}
policy: {scripted: ik}
goals:
  - tcp: [0.3, 0.0, 0.3]
    timeout_s: 2
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        loads(text, Path("x.yaml"))
    return caught.value.errors


@pytest.mark.parametrize("text, expected", [
    # a word where a number belongs, named with its list index
    (GOOD + "  - tcp: [0.3, 0.1, 0.3]\n    timeout_s: soon\n",
     'x.yaml:8: goals[1].timeout_s: expected a number > 0, got "soon"'),
    # a misspelt field gets a did-you-mean
    (GOOD + "recrd: true\n", "x.yaml:7: recrd: unknown field; did you mean 'record'?"),
    # a value outside a fixed set
    (GOOD.replace("target: mock", "target: gazebo"),
     'x.yaml:2: robot.target: expected one of mock, mujoco, isaac, hw, got "gazebo"'),
    # a joint target outside the arm's limits
    (GOOD + "  - joints: {elbow: 3.5}\n",
     "x.yaml:7: goals[1].joints.elbow: 3.5 rad is outside the elbow limits -1..2.95"),
    # the wrong number of values
    (GOOD.replace("[0.3, 0.0, 0.3]", "[0.3, 0.0]"), "x.yaml:5: goals[0].tcp: expected 3 numbers, got 2"),
    # a negative period
    (GOOD.replace("dt: 0.02", "dt: -1"), "x.yaml:2: robot.dt: expected a number > 0 and <= 1, got -1"),
    # a goal without a target
    (GOOD + "  - timeout_s: 3\n", "x.yaml:7: goals[1]: a goal needs a target"),
    # an assertion missing its bound
    (GOOD + "assertions:\n  loop_latency: {}\n", "assertions.loop_latency: missing required field 'p99_ms'"),
    # the same key twice (YAML would silently keep the last)
    (GOOD + "seed: 1\nseed: 2\n", "x.yaml:8: seed: duplicate key"),
    # neither a model nor a scripted policy
    (GOOD.replace("policy: {scripted: ik}", "policy: {}"), "policy: give the policy: path (a model file or a policy folder), scripted"),
    # a model file that is not there
    (GOOD.replace("{scripted: ik}", "{model: nowhere.onnx}"), "x.yaml:3: policy.model: no such file or folder 'nowhere.onnx'"),
    # hold_after_kill without a kill
    (GOOD + "assertions:\n  hold_after_kill: true\n", "assertions.hold_after_kill: needs a kill action"),
    # two goals with one id (each goal is a JUnit test case named after it)
    (GOOD + "  - id: goal0\n    tcp: [0.3, 0.1, 0.3]\n", "x.yaml:7: goals[1].id: 'goal0' is already the id of goals[0]"),
    # not YAML at all
    ("name: [unclosed\n", "x.yaml:2: not valid YAML"),
    # not a mapping at the top
    ("- 1\n- 2\n", "x.yaml:1: (top): expected a mapping of fields, got a list"),
])
def test_broken_scenario_names_file_line_and_field(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert any(expected in error for error in errors), errors


def test_every_mistake_is_listed_in_file_order() -> None:
    text = GOOD.replace("dt: 0.02", "dt: fast") + "recrd: true\n  \n"
    errors = errors_of(text.replace("timeout_s: 2", "timeout_s: -2"))
    assert [e.split(":")[1] for e in errors] == ["2", "6", "7"], errors


def test_good_scenario_gives_typed_config() -> None:
    scenario = loads(GOOD + "randomization: {mass_scale: 0.1, max_latency_steps: 2}\n", Path("x.yaml"))
    assert scenario.robot.target == "mock" and scenario.robot.dt == 0.02
    assert scenario.policy.scripted == "ik" and scenario.policy.model is None
    goal = scenario.goals[0]
    assert goal.kind == "tcp" and goal.target == (0.3, 0.0, 0.3) and goal.tolerance == pytest.approx(0.01)
    assert scenario.randomization == {"mass_scale": 0.1, "max_latency_steps": 2.0}
    assert scenario.assertions.joint_limits is not None and scenario.assertions.no_crash


def test_partial_joint_goal_judges_only_named_joints() -> None:
    scenario = loads(GOOD + "  - joints: {shoulder: 0.2, elbow: 1.8}\n    tolerance_rad: 0.02\n", Path("x.yaml"))
    goal = scenario.goals[1]
    assert goal.kind == "joints" and goal.joints_judged == (1, 2) and goal.tolerance == 0.02


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    scenario = load(path)
    assert scenario.goals and scenario.name == path.stem


def test_cli_exits_2_and_prints_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + "  - tcp: [0.3, 0.1, 0.3]\n    timeout_s: soon\n")
    result = subprocess.run([HIL, "run", str(bad), "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert f'{bad}:8: goals[1].timeout_s: expected a number > 0, got "soon"' in result.stderr
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_cli_refuses_a_bad_seed_range(tmp_path: Path) -> None:
    result = subprocess.run([HIL, "run", str(ROOT / "scenarios" / "smoke.yaml"), "--seeds", "5..2"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and "--seeds: '5..2'" in result.stderr


def test_robot_command_replaces_hil_node_for_one_target(tmp_path: Path) -> None:
    from scenarios.launch import RunSettings, robot_argv

    text = GOOD.replace("robot: {target: mock, dt: 0.02}",
                        "robot:\n  target: mock\n  command:\n    isaac: [/isaac-sim/python.sh, -m, sim_node]\n"
                        "  options:\n    isaac: [--deadline-ms, '50']")
    scenario = loads(text, Path("x.yaml"))
    settings = RunSettings("isaac", "lockstep", 4, None, False, tmp_path, tmp_path)
    assert robot_argv(["hil"], scenario, settings) == [
        "/isaac-sim/python.sh", "-m", "sim_node", "--backend", "isaac", "--mode", "lockstep", "--dt", "0.02",
        "--seed", "4", "--deadline-ms", "50"]
    mock = RunSettings("mock", "lockstep", 4, None, False, tmp_path, tmp_path)
    assert robot_argv(["hil"], scenario, mock)[:4] == ["hil", "node", "sim", "--backend"]
    errors = errors_of(text.replace("[/isaac-sim/python.sh, -m, sim_node]", "[]"))
    assert any("robot.command.isaac: expected a command" in e for e in errors), errors
