"""Scenarios name any policy: a model file or folder, scripted, Python, an external command; goals of a body.

Validation is checked on scenario text; what the runner launches is checked
on the command lines it builds; the goal message and the judging of a goal
of another body than the TCP on real forward kinematics.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from policy_node.policy.python import goal_of
from roarm.joints import pose
from roarm.kinematics import body_position, fk
from scenarios.goals import goal_error, goal_message
from scenarios.launch import RunSettings, control_period, policy_launch, robot_argv
from scenarios.schema import ScenarioError, loads, policy_from_source
from scenarios.shipped import find_scenario, shipped
from schemas import messages_pb2
from tests import byo_onnx

ROOT = Path(__file__).resolve().parent.parent
REACH = ROOT / "policies" / "reach.onnx"

BASE = """\
name: t
robot: {target: mock}
policy: POLICY
goals:
  - tcp: [0.3, 0.0, 0.3]
    timeout_s: 2
"""


def scenario_text(policy: str) -> str:
    return BASE.replace("POLICY", policy)


def errors_of(text: str, path: Path = Path("x.yaml")) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        loads(text, path)
    return caught.value.errors


def settings(tmp_path: Path, target: str = "mock") -> RunSettings:
    return RunSettings(target, "lockstep", 0, None, False, tmp_path, tmp_path)


# -- policy.path, its alias model, and the period it brings ---------------------------------------

def test_path_names_a_model_file_and_the_robot_runs_at_its_period(tmp_path: Path) -> None:
    scenario = loads(scenario_text(f"{{path: {REACH}}}"), tmp_path / "s.yaml")
    assert scenario.policy.path == REACH and scenario.policy.source == str(REACH)
    assert scenario.robot.dt is None
    assert control_period(scenario) == pytest.approx(0.01)  # reach.onnx's roarm.dt
    assert robot_argv(["hil"], scenario, settings(tmp_path))[-3:-2] == ["0.01"]


def test_model_is_still_accepted_and_an_explicit_dt_wins(tmp_path: Path) -> None:
    text = scenario_text("{model: ../policies/reach.onnx}").replace("{target: mock}", "{target: mock, dt: 0.02}")
    scenario = loads(text, ROOT / "scenarios" / "x.yaml")
    assert scenario.policy.path == REACH
    assert control_period(scenario) == 0.02


def test_path_names_a_policy_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    byo_onnx.mlp(folder / "policy.onnx", 6, 6)
    (folder / "policy.yaml").write_text("period: 0.04\nobservation: [joint_pos]\n")
    scenario = loads(scenario_text("{path: mine}"), tmp_path / "s.yaml")
    assert scenario.policy.path == folder
    assert control_period(scenario) == pytest.approx(0.04)


def test_a_broken_policy_description_is_a_clear_launch_error(tmp_path: Path) -> None:
    from scenarios.launch import LaunchError

    folder = tmp_path / "mine"
    folder.mkdir()
    byo_onnx.mlp(folder / "policy.onnx", 6, 6)
    (folder / "policy.yaml").write_text("period: soon\nobservation: [joint_pos]\n")
    scenario = loads(scenario_text("{path: mine}"), tmp_path / "s.yaml")
    with pytest.raises(LaunchError, match=r"policy.yaml:1: period"):
        control_period(scenario)


def test_scripted_and_python_policies_run_at_the_default_period(tmp_path: Path) -> None:
    assert control_period(loads(scenario_text("{scripted: ik}"), tmp_path / "s.yaml")) == 0.02
    scenario = loads(scenario_text("{python: policies.python_ik.policy:make_policy}"), tmp_path / "s.yaml")
    assert control_period(scenario) == 0.02
    launch = policy_launch(["hil"], scenario, settings(tmp_path))
    assert launch.argv[:5] == ["hil", "node", "policy", "--policy", "policies.python_ik.policy:make_policy"]


@pytest.mark.parametrize("policy, expected", [
    ("{path: nowhere}", "x.yaml:3: policy.path: no such file or folder 'nowhere'"),
    ("{path: a.onnx, model: b.onnx}", "x.yaml:3: policy.model: give path or model (its older name), not both"),
    ("{scripted: ik, python: 'a:b'}", "x.yaml:3: policy: give one of path, scripted, python or command, "
                                      "not scripted and python"),
    ("{python: not a source}", "x.yaml:3: policy.python: expected module:factory or path/to/file.py:factory"),
    ("{python: 'gone.py:make'}", "x.yaml:3: policy.python: no such Python file 'gone.py'"),
    ("{command: []}", "x.yaml:3: policy.command: expected a command"),
    ("{command: [prog, '{run}']}", "x.yaml:3: policy.command[1]: unknown placeholder {run}; known: {run_dir}, "
                                   "{endpoints}, {scenario_dir}"),
    ("{command: [./nowhere/prog]}", "x.yaml:3: policy.command[0]: no such program './nowhere/prog'"),
    ("{command: [prog], args: [--x]}", "x.yaml:3: policy.args: args are options of hil node policy"),
])
def test_bad_policy_sections_name_file_line_and_field(policy: str, expected: str) -> None:
    errors = errors_of(scenario_text(policy))
    assert any(expected in error for error in errors), errors


def test_a_python_file_is_found_next_to_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def make():\n    return None\n")
    scenario = loads(scenario_text("{python: 'mine.py:make'}"), tmp_path / "s.yaml")
    assert scenario.policy.python == f"{tmp_path / 'mine.py'}:make"


# -- hil run --policy ------------------------------------------------------------------------------

def test_policy_override_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert policy_from_source("scripted:waypoints").scripted == "waypoints"
    assert policy_from_source("policies/reach.onnx").path == REACH
    assert policy_from_source("policies.python_ik.policy:make_policy").python == "policies.python_ik.policy:make_policy"
    assert policy_from_source("policies/python_ik/policy.py:make_policy").python == \
        f"{ROOT / 'policies' / 'python_ik' / 'policy.py'}:make_policy"
    for bad, expected in (("scripted:dance", "--policy: unknown scripted policy 'dance'"),
                          ("nowhere.onnx", "--policy: no such file or folder 'nowhere.onnx'"),
                          ("gone.py:make", "--policy: no such Python file 'gone.py'")):
        with pytest.raises(ScenarioError) as caught:
            policy_from_source(bad)
        assert expected in str(caught.value)


# -- policy.command ------------------------------------------------------------------------------------

def test_command_gets_the_run_folder_and_endpoints(tmp_path: Path) -> None:
    program = tmp_path / "bin" / "my_policy"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    text = scenario_text("{command: [bin/my_policy, --endpoints, '{endpoints}', --dir, '{run_dir}', '{scenario_dir}']}")
    scenario = loads(text, tmp_path / "s.yaml")
    launch = policy_launch(["hil"], scenario, settings(tmp_path / "run"))
    assert launch.argv == [str(program), "--endpoints", str(tmp_path / "run" / "endpoints.json"), "--dir",
                           str(tmp_path / "run"), str(tmp_path)]
    assert launch.env == {"HIL_RUN_DIR": str(tmp_path / "run")}
    assert scenario.policy.label == "command:my_policy"


def test_a_command_not_on_path_is_a_launch_error(tmp_path: Path) -> None:
    from scenarios.launch import LaunchError

    scenario = loads(scenario_text("{command: [no-such-policy-program-here]}"), tmp_path / "s.yaml")
    with pytest.raises(LaunchError, match="not a program on PATH"):
        policy_launch(["hil"], scenario, settings(tmp_path))


# -- goals of a body, with an orientation -----------------------------------------------------------------

GOAL = BASE.replace("POLICY", "{scripted: ik}")


def test_goal_body_and_quat_reach_the_policy(tmp_path: Path) -> None:
    text = GOAL.replace("    timeout_s: 2\n", "    timeout_s: 2\n    body: gripper_link\n    quat: [0, 1, 0, 0]\n")
    goal = loads(text, tmp_path / "s.yaml").goals[0]
    assert goal.body == "gripper_link" and goal.quat == (0.0, 1.0, 0.0, 0.0)
    message = goal_message(goal, 3)
    decoded = messages_pb2.Goal.FromString(message.SerializeToString())
    assert decoded.tcp.body == "gripper_link" and list(decoded.tcp.quat) == [0.0, 1.0, 0.0, 0.0]
    seen = goal_of(decoded)
    assert seen is not None and seen.body == "gripper_link" and seen.quat is not None
    np.testing.assert_array_equal(seen.quat, [0.0, 1.0, 0.0, 0.0])


def test_a_tcp_goal_without_body_or_quat_sends_neither(tmp_path: Path) -> None:
    message = goal_message(loads(GOAL, tmp_path / "s.yaml").goals[0], 0)
    assert message.tcp.body == "tcp" and len(message.tcp.quat) == 0
    assert goal_of(message).quat is None  # type: ignore[union-attr]


def test_a_body_goal_is_judged_by_forward_kinematics_of_that_body(tmp_path: Path) -> None:
    q = pose("ready")
    link = body_position(q, "gripper_link")
    text = GOAL.replace("[0.3, 0.0, 0.3]", f"[{link[0]}, {link[1]}, {link[2]}]").replace(
        "    timeout_s: 2\n", "    timeout_s: 2\n    body: gripper_link\n")
    goal = loads(text, tmp_path / "s.yaml").goals[0]
    # The robot's tcp is elsewhere: the goal is judged on the body, from the measured joints.
    state = messages_pb2.JointState(position=list(q), tcp=list(fk(q)))
    assert goal_error(goal, state, q) == pytest.approx(0.0, abs=1e-12)
    moved = q.copy()
    moved[0] += 0.1
    assert goal_error(goal, state, moved) == pytest.approx(math.dist(body_position(moved, "gripper_link"), link))


@pytest.mark.parametrize("extra, expected", [
    ("    body: elbow\n", 'x.yaml:7: goals[0].body: expected one of tcp, base_link, link1'),
    ("    quat: [1, 1, 0, 0]\n", "x.yaml:7: goals[0].quat: [1, 1, 0, 0] is not a unit quaternion (w, x, y, z)"),
    ("    quat: [1, 0, 0]\n", "x.yaml:7: goals[0].quat: expected 4 numbers, got 3"),
])
def test_bad_goal_bodies_and_orientations(extra: str, expected: str) -> None:
    errors = errors_of(GOAL + extra)
    assert any(expected in error for error in errors), errors


def test_a_joint_goal_takes_no_body() -> None:
    errors = errors_of(GOAL + "  - joints: [0, 0, 1.57, 0, 0, 0]\n    body: tcp\n")
    assert any("goals[1].body: only a tcp goal takes body" in e for e in errors), errors


# -- shipped scenarios by name ---------------------------------------------------------------------------

def test_a_shipped_scenario_is_found_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_scenario("reach") == ROOT / "scenarios" / "reach.yaml"
    assert {"reach", "smoke", "track", "watchdog"} <= set(shipped())
    (tmp_path / "reach").mkdir()  # a folder of that name here is not a scenario file, and says so
    with pytest.raises(ScenarioError, match="shipped scenarios"):
        find_scenario("nosuch")
    assert os.path.samefile(find_scenario(str(ROOT / "scenarios" / "smoke.yaml")), ROOT / "scenarios" / "smoke.yaml")
