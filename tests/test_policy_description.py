"""Policy descriptions: policy.yaml, MODEL.onnx.yaml and roarm.* metadata, and every malformed field."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from policy_node.policy import description as d
from tests import byo_onnx

ROOT = Path(__file__).resolve().parent.parent

BASE = """\
version: 1
model: {file: policy.onnx, input: obs, output: actions, batch: fixed, dtype: float32}
period: 0.02
joints: [base_link_to_link1, link1_to_link2, link2_to_link3, link3_to_link4, link4_to_link5]
default_pose: {link1_to_link2: 0.7, gripper: 0.168}
observation:
  - joint_pos
  - {term: joint_pos_rel, joints: [base, shoulder, elbow, wrist, roll, gripper], scale: 2.0}
  - {term: joint_vel, clip: [-5, 5]}
  - {term: joint_vel_rel, offset: 0.1}
  - sin
  - cos
  - gripper
  - last_action
  - {term: goal_position, body: gripper_link, frame: base}
  - {term: goal_pose, body: tcp, quat: xyzw, default_quat: [0, 1, 0, 0], name: pose_command}
  - {term: tcp, body: link3}
  - tcp_error
  - {term: constant, value: [1.0, -1.0]}
normalize: {mean: 0.0, std: 1.0, clip: 10.0}
action: {mode: offset, scale: [0.5, 0.5, 0.5, 0.5, 0.25], offset: 0.0, clip: 1.0, hold: default}
recurrent: [{input: h_in, output: h_out}]
limits:
  lower: [-3.14, -1.57, -1.0, -1.57, -3.14]
  upper: [3.14, 1.57, 2.95, 1.57, 3.14]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    byo_onnx.mlp(tmp_path / "policy.onnx", 55, 5)
    return tmp_path


def write(folder: Path, text: str, name: str = "policy.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def with_line(line: int, new: str) -> str:
    lines = BASE.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_a_full_description_reads_every_field(folder: Path) -> None:
    write(folder, BASE)
    desc = d.load(folder)
    assert desc.model.path == folder / "policy.onnx"
    assert (desc.model.input, desc.model.output, desc.model.batch, desc.model.dtype) == ("obs", "actions", "fixed", "float32")
    assert desc.period == 0.02
    assert desc.joint_index == (0, 1, 2, 3, 4)
    assert desc.default_pose == (0.0, 0.7, 0.0, 0.0, 0.0, 0.168)
    kinds = [t.kind for t in desc.observation]
    assert kinds == ["joint_pos", "joint_pos_rel", "joint_vel", "joint_vel_rel", "sin", "cos", "gripper", "last_action",
                     "goal_position", "goal_pose", "tcp", "tcp_error", "constant"]
    sizes = [t.size for t in desc.observation]
    assert sizes == [5, 6, 5, 5, 5, 5, 1, 5, 3, 7, 3, 3, 2]
    assert desc.observation_size == 55
    rel = desc.observation[1]
    assert rel.joints == (0, 1, 2, 3, 4, 5) and rel.scale == (2.0,) * 6
    assert desc.observation[2].clip == (-5.0, 5.0) and desc.observation[3].offset == (0.1,) * 5
    goal = desc.observation[8]
    assert (goal.body, goal.frame) == ("gripper_link", "base")
    pose = desc.observation[9]
    assert (pose.name, pose.quat_order, pose.default_quat) == ("pose_command", "xyzw", (0.0, 1.0, 0.0, 0.0))
    assert desc.observation[10].body == "link3"
    assert desc.observation[12].value == (1.0, -1.0)
    assert desc.needs_goal and desc.goal_bodies == {"gripper_link", "tcp"}
    assert desc.normalize == d.Normalize((0.0,) * 55, (1.0,) * 55, 10.0)
    assert desc.action == d.ActionSpec("offset", (0.5, 0.5, 0.5, 0.5, 0.25), (0.0,) * 5, (-1.0, 1.0), "default")
    assert desc.recurrent == (d.RecurrentPair("h_in", "h_out"),)
    assert desc.limits is not None and desc.limits[1][2] == 2.95
    assert desc.layout()[9] == (40, 47, "pose_command (goal_pose)")


def test_bus_and_urdf_joint_names_are_the_same_joints(folder: Path) -> None:
    write(folder, "joints: [shoulder, link2_to_link3]\nobservation: [joint_pos]\n")
    desc = d.load(folder)
    assert desc.joint_index == (1, 2) and desc.observation[0].joints == (1, 2)
    assert d.load(folder).action == d.ActionSpec("absolute", (1.0, 1.0), (0.0, 0.0), None, "current")


def test_the_smallest_description_takes_the_folders_only_model_and_all_six_joints(folder: Path) -> None:
    write(folder, "observation: [joint_pos]\n")
    desc = d.load(folder / "policy.yaml")
    assert desc.model.file == "policy.onnx" and desc.joints == ("base", "shoulder", "elbow", "wrist", "roll", "gripper")
    assert desc.period is None and desc.normalize is None and desc.recurrent == ()


def test_a_model_yaml_beside_the_model_describes_it(tmp_path: Path) -> None:
    model = tmp_path / "walker.onnx"
    byo_onnx.mlp(model, 6, 6)
    write(tmp_path, "observation: [joint_pos]\n", "walker.onnx.yaml")
    for given in (model, tmp_path / "walker.onnx.yaml"):
        desc = d.load(given)
        assert desc.model.path == model and desc.source == str(tmp_path / "walker.onnx.yaml")


def test_var_and_epsilon_give_sb3s_std(folder: Path) -> None:
    write(folder, "observation: [joint_pos]\nnormalize: {mean: 1.0, var: [4, 4, 4, 4, 4, 0], epsilon: 1.0e-8}\n")
    norm = d.load(folder).normalize
    assert norm is not None and norm.std[0] == pytest.approx(2.0) and norm.std[5] == pytest.approx(1e-4)
    assert norm.clip is None


def test_per_joint_mapping_for_action_scale(folder: Path) -> None:
    write(folder, "joints: [base, shoulder, elbow]\nobservation: [joint_pos]\naction: {scale: {link1_to_link2: 0.3}}\n")
    assert d.load(folder).action.scale == (1.0, 0.3, 1.0)


def test_dumps_round_trips(folder: Path) -> None:
    write(folder, BASE)
    desc = d.load(folder)
    copy = d.loads(d.dumps(desc, "written by a test\n\nsecond paragraph"), folder / "copy.yaml")
    assert dataclasses.replace(copy, source="") == dataclasses.replace(desc, source="")
    assert d.dumps(desc, "a\nb").startswith("# a\n# b\n")


# -- every malformed field: file:line: field: how to fix ---------------------------------------

MALFORMED = [
    (1, "version: 2", "version", "reads version 1"),
    (1, "versoin: 1", "versoin", "did you mean 'version'"),
    (2, "model: {file: missing.onnx}", "model.file", "no such file"),
    (2, "model: {file: policy.onnx, batch: sometimes}", "model.batch", "fixed, dynamic, none"),
    (2, "model: {file: policy.onnx, dtype: int8}", "model.dtype", "float32, float64, float16"),
    (2, "model: {file: policy.onnx, input: 3}", "model.input", "non-empty string"),
    (2, "model: {file: policy.onnx, outputs: actions}", "model.outputs", "did you mean 'output'"),
    (3, "period: -0.02", "period", "a number > 0"),
    (4, "joints: [base_link_to_link1, elbw]", "joints[1]", "unknown joint 'elbw'"),
    (4, "joints: [base, base_link_to_link1]", "joints[1]", "listed twice"),
    (5, "default_pose: {link9: 0.7}", "default_pose.link9", "unknown joint 'link9'"),
    (5, "default_pose: {shoulder: high}", "default_pose.shoulder", "expected a number"),
    (5, "default_pose: [0.1, 0.2]", "default_pose", "expected 5 numbers"),
    (7, "  - joint_pos_rl", "observation[0].term", "did you mean 'joint_pos_rel'"),
    (8, "  - {term: joint_pos_rel, joints: [base, sholder]}", "observation[1].joints[1]", "unknown joint 'sholder'"),
    (8, "  - {term: joint_pos_rel, scale: [1, 2]}", "observation[1].scale", "has 2 values for 5"),
    (9, "  - {term: joint_vel, clip: [5, -5]}", "observation[2].clip", "must be below"),
    (9, "  - {term: joint_vel, clip: wide}", "observation[2].clip", "[low, high]"),
    (10, "  - {term: joint_vel_rel, offset: fast}", "observation[3].offset", "expected a number or a list"),
    (10, "  - {term: joint_vel_rel, body: tcp}", "observation[3].body", "unknown field"),
    (15, "  - {term: goal_position, body: finger}", "observation[8].body", "expected one of tcp"),
    (15, "  - {term: goal_position, frame: table}", "observation[8].frame", "world, base"),
    (16, "  - {term: goal_pose, quat: wxzy}", "observation[9].quat", "wxyz, xyzw"),
    (16, "  - {term: goal_pose, default_quat: [1, 1, 0, 0]}", "observation[9].default_quat", "unit quaternion"),
    (19, "  - {term: constant}", "observation[12]", "missing field 'value'"),
    (19, "  - {terms: constant}", "observation[12]", "missing field 'term'"),
    (19, "  - 42", "observation[12]", "a term name or a mapping"),
    (20, "normalize: {mean: [0, 1], std: 1.0}", "normalize.mean", "has 2 values for 55"),
    (20, "normalize: {mean: 0.0, std: 0.0}", "normalize.std", "> 0"),
    (20, "normalize: {mean: 0.0}", "normalize", "missing 'std'"),
    (20, "normalize: {mean: 0.0, std: 1.0, var: 1.0}", "normalize", "not both"),
    (21, "action: {mode: relative}", "action.mode", "absolute, delta, offset"),
    (21, "action: {scale: [0.5, 0.5]}", "action.scale", "2 values for 5 joints"),
    (21, "action: {scale: {gripper: 0.5}}", "action.scale.gripper", "not one of the policy's joints"),
    (21, "action: {clip: [1, -1]}", "action.clip", "must be below"),
    (21, "action: {clip: -1}", "action.clip", "must be > 0"),
    (21, "action: {hold: last}", "action.hold", "current, default"),
    (22, "recurrent: [{input: h_in}]", "recurrent[0]", "missing required field 'output'"),
    (24, "  lower: [-3.14, -1.57]", "limits.lower", "expected 5 numbers"),
    (24, "  lower: [3.15, -1.57, -1.0, -1.57, -3.14]", "limits.lower[0]", "not below upper"),
]


@pytest.mark.parametrize(("line", "text", "field", "hint"), MALFORMED, ids=[f"{m[2]}:{m[3]}" for m in MALFORMED])
def test_malformed_field_names_file_line_and_field(folder: Path, line: int, text: str, field: str, hint: str) -> None:
    path = write(folder, with_line(line, text))
    with pytest.raises(d.PolicyDescriptionError) as caught:
        d.load(folder)
    prefix = f"{path}:{line}: {field}: "
    matching = [e for e in caught.value.errors if e.startswith(prefix)]
    assert matching, f"no error starting {prefix!r} in {caught.value.errors}"
    assert any(hint in e for e in matching), f"{hint!r} not in {matching}"
    assert caught.value.exit_code == 2


def test_every_problem_of_a_file_is_listed_at_once(folder: Path) -> None:
    text = with_line(3, "period: 0").replace("mode: offset", "mode: offst")
    path = write(folder, text)
    with pytest.raises(d.PolicyDescriptionError) as caught:
        d.load(folder)
    assert {e.split(": ")[0] + ": " + e.split(": ")[1] for e in caught.value.errors} >= {
        f"{path}:3: period", f"{path}:21: action.mode"}


def test_an_empty_observation_says_which_terms_exist(folder: Path) -> None:
    path = write(folder, "observation: []\n")
    with pytest.raises(d.PolicyDescriptionError, match=rf"{path}:1: observation: is empty.*joint_pos_rel"):
        d.load(folder)


def test_yaml_syntax_and_duplicate_keys_have_lines(folder: Path) -> None:
    path = write(folder, "observation: [joint_pos\nperiod: 0.02\n")
    with pytest.raises(d.PolicyDescriptionError, match=rf"{path}:\d+: not valid YAML"):
        d.load(folder)
    path = write(folder, "observation: [joint_pos]\nperiod: 0.02\nperiod: 0.03\n")
    with pytest.raises(d.PolicyDescriptionError, match=rf"{path}:3: period: duplicate key"):
        d.load(folder)


def test_a_folder_without_a_description_says_how_to_write_one(tmp_path: Path) -> None:
    with pytest.raises(d.PolicyDescriptionError, match="hil policy init"):
        d.load(tmp_path)


# -- roarm.* ONNX metadata: the same description ---------------------------------------------

def metadata(**changes: str) -> dict[str, str]:
    meta = {
        "roarm.spec_version": "1",
        "roarm.observation": "position,velocity,tcp_error",
        "roarm.joint_names": json.dumps(["base", "shoulder", "elbow", "wrist", "roll", "gripper"]),
        "roarm.action_kind": "delta",
        "roarm.action_scale": json.dumps([0.02] * 4 + [0.0, 0.0]),
        "roarm.lower": json.dumps([-math.pi, -math.pi / 2, -1.0, -math.pi / 2, -math.pi, 0.0]),
        "roarm.upper": json.dumps([math.pi, math.pi / 2, 2.95, math.pi / 2, math.pi, 1.5]),
        "roarm.dt": "0.01",
    }
    meta.update(changes)
    return meta


def test_metadata_reads_into_the_same_description(tmp_path: Path) -> None:
    model = tmp_path / "reach.onnx"
    byo_onnx.mlp(model, 15, 6, metadata=metadata())
    desc = d.load(model)
    assert [t.kind for t in desc.observation] == ["joint_pos", "joint_vel", "tcp_error"]
    assert desc.observation_size == 15 and desc.period == 0.01 and desc.needs_goal
    assert desc.action.mode == "delta" and desc.action.scale == (0.02,) * 4 + (0.0, 0.0)
    assert desc.limits is not None and desc.limits[0][1] == pytest.approx(-math.pi / 2)
    # Written as a policy.yaml and read back: the same description (one code path).
    copy = d.loads(d.dumps(desc), tmp_path / "reach.onnx.yaml")
    assert dataclasses.replace(copy, source="") == dataclasses.replace(desc, source="")


def test_the_shipped_reach_model_has_a_description() -> None:
    desc = d.load(ROOT / "policies" / "reach.onnx")
    assert desc.joints[0] == "base" and desc.period is not None and desc.observation_size > 0


def test_a_plain_onnx_without_metadata_or_yaml_says_what_to_write(tmp_path: Path) -> None:
    model = tmp_path / "plain.onnx"
    byo_onnx.mlp(model, 10, 5)
    with pytest.raises(d.PolicyDescriptionError) as caught:
        d.load(model)
    message = str(caught.value)
    assert "plain.onnx.yaml" in message and "hil policy init plain.onnx" in message


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("roarm.joint_names", "[base,", "roarm.joint_names: not JSON"),
    ("roarm.observation", "position,torque", "unknown term 'torque'"),
    ("roarm.dt", "fast", "roarm.dt: 'fast' is not a number"),
    ("roarm.spec_version", "2", "this harness reads '1'"),
    ("roarm.action_kind", "velocity", "action.mode: expected one of absolute, delta, offset"),
    ("roarm.action_scale", "[1, 2]", "action.scale: has 2 values for 6 joints"),
])
def test_malformed_metadata_names_the_key(tmp_path: Path, key: str, value: str, expected: str) -> None:
    model = tmp_path / "m.onnx"
    byo_onnx.mlp(model, 12, 6, metadata=metadata(**{key: value}))
    with pytest.raises(d.PolicyDescriptionError) as caught:
        d.load(model)
    assert any(e.startswith(f"{model} (metadata): ") and expected in e for e in caught.value.errors), caught.value.errors


def test_a_file_that_is_not_onnx_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"\x00garbage")
    with pytest.raises(d.PolicyDescriptionError, match="not an ONNX model"):
        d.load(model)


def test_a_model_inside_a_policy_folder_is_described_by_the_folder(folder: Path) -> None:
    write(folder, BASE)
    assert d.load(folder / "policy.onnx") == d.load(folder)
    byo_onnx.mlp(folder / "other.onnx", 55, 5)
    with pytest.raises(d.PolicyDescriptionError, match="describes 'policy.onnx', not 'other.onnx'"):
        d.load(folder / "other.onnx")
