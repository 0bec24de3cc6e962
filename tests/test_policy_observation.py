"""Observation terms, normalization, action modes and recurrent state, against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policy_node.policy import description as d
from policy_node.policy.action import ActionMapper, ActionSizeError
from policy_node.policy.base import Goal
from policy_node.policy.observation import BASE_OFFSET, MissingGoal, ObservationBuilder
from policy_node.policy.recurrent import RecurrentState
from roarm import kinematics
from roarm.joints import LOWER, UPPER
from tests import byo_onnx

ROOT = Path(__file__).resolve().parent.parent
Q = np.array([0.3, -0.4, 1.2, 0.5, -0.7, 0.9])
QD = np.array([0.1, -0.2, 0.3, -0.4, 0.5, -0.6])


def describe(tmp_path: Path, text: str, n_in: int = 4, n_out: int = 6) -> d.PolicyDescription:
    byo_onnx.mlp(tmp_path / "policy.onnx", n_in, n_out)
    (tmp_path / "policy.yaml").write_text(text)
    return d.load(tmp_path)


def build(desc: d.PolicyDescription, goal: Goal | None = None, last: np.ndarray | None = None,
          tcp: np.ndarray | None = None) -> np.ndarray:
    last = np.zeros(desc.action_size) if last is None else last
    return ObservationBuilder(desc).build(Q, QD, last, goal, tcp)[0].astype(float)


def test_joint_terms(tmp_path: Path) -> None:
    desc = describe(tmp_path, """\
default_pose: {base: 0.1, elbow: 1.0, gripper: 0.2}
observation:
  - {term: joint_pos, joints: [elbow, base_link_to_link1]}
  - joint_pos_rel
  - {term: joint_vel, joints: [gripper]}
  - joint_vel_rel
  - {term: sin, joints: [roll, wrist]}
  - {term: cos, joints: [shoulder]}
  - gripper
""")
    x = build(desc)
    default = np.array([0.1, 0.0, 1.0, 0.0, 0.0, 0.2])
    expected = np.concatenate([
        [Q[2], Q[0]], Q - default, [QD[5]], QD, np.sin([Q[4], Q[3]]), np.cos([Q[1]]), [Q[5]],
    ])
    np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-7)


def test_last_action_is_the_clipped_raw_output_and_zero_after_reset(tmp_path: Path) -> None:
    desc = describe(tmp_path, "joints: [base, shoulder]\nobservation: [last_action]\naction: {clip: 1.0}\n")
    builder, mapper = ObservationBuilder(desc), ActionMapper(desc)
    np.testing.assert_array_equal(builder.build(Q, QD, mapper.last_action)[0], [0.0, 0.0])
    mapper(np.array([[0.5, -3.0]], dtype=np.float32), Q)
    np.testing.assert_allclose(builder.build(Q, QD, mapper.last_action)[0], [0.5, -1.0])
    mapper.reset()
    np.testing.assert_array_equal(builder.build(Q, QD, mapper.last_action)[0], [0.0, 0.0])


def test_goal_position_in_world_and_base_frames(tmp_path: Path) -> None:
    desc = describe(tmp_path, "observation:\n  - goal_position\n  - {term: goal_position, frame: base}\n"
                              "  - {term: goal_position, frame: base_link}\n")
    goal = Goal(np.array([0.2, -0.1, 0.15]))
    x = build(desc, goal)
    np.testing.assert_allclose(x, [0.2, -0.1, 0.15, 0.2, -0.1, 0.15 - 0.0701, 0.2, -0.1, 0.15 - 0.0701], atol=1e-7)
    assert BASE_OFFSET.tolist() == [0.0, 0.0, 0.0701]


def test_goal_pose_quaternion_orders_and_default(tmp_path: Path) -> None:
    desc = describe(tmp_path, "observation:\n  - {term: goal_pose, quat: wxyz}\n  - {term: goal_pose, quat: xyzw}\n"
                              "  - {term: goal_pose, quat: xyzw, default_quat: [0, 0, 0, 1]}\n")
    w, x_, y, z = 0.5, 0.5, -0.5, 0.5
    given = build(desc, Goal(np.array([0.1, 0.2, 0.3]), np.array([w, x_, y, z])))
    np.testing.assert_allclose(given, [0.1, 0.2, 0.3, w, x_, y, z, 0.1, 0.2, 0.3, x_, y, z, w,
                                       0.1, 0.2, 0.3, x_, y, z, w], atol=1e-7)
    absent = build(desc, Goal(np.array([0.1, 0.2, 0.3])))
    np.testing.assert_allclose(absent, [0.1, 0.2, 0.3, 1, 0, 0, 0, 0.1, 0.2, 0.3, 0, 0, 0, 1,
                                        0.1, 0.2, 0.3, 0, 0, 1, 0], atol=1e-7)


def test_measured_body_positions_and_tcp_error(tmp_path: Path) -> None:
    desc = describe(tmp_path, """\
observation:
  - tcp
  - {term: tcp, body: link3}
  - {term: tcp, body: gripper_link, frame: base}
  - tcp_error
  - {term: tcp_error, body: gripper_link}
""")
    goal = Goal(np.array([0.25, 0.05, 0.2]))
    x = build(desc, goal)
    tcp = kinematics.fk(Q)
    link3 = kinematics.fk_frames(Q)[3][:3, 3]
    jaw = kinematics.body_position(Q, "gripper_link")
    np.testing.assert_allclose(x, np.concatenate([tcp, link3, jaw - [0, 0, 0.0701], goal.position - tcp,
                                                  goal.position - jaw]), atol=1e-6)
    # The robot's own TCP, when it sends one, is what the tcp body observes.
    sent = np.array([0.3, 0.0, 0.1])
    np.testing.assert_allclose(build(desc, goal, tcp=sent)[:3], sent, atol=1e-7)
    np.testing.assert_allclose(build(desc, goal, tcp=sent)[9:12], goal.position - sent, atol=1e-7)


def test_constant_and_offset_clip_scale_in_isaac_labs_order(tmp_path: Path) -> None:
    desc = describe(tmp_path, """\
observation:
  - {term: constant, value: [1.0, -2.0], scale: 3.0}
  - {term: joint_pos, joints: [base, elbow], offset: 1.0, clip: [-0.5, 1.5], scale: [2.0, 10.0]}
  - {term: constant, value: 7.0}
""")
    builder = ObservationBuilder(desc)
    for _ in range(3):  # constants are written once and survive every step
        x = builder.build(Q, QD, np.zeros(6))[0]
    np.testing.assert_allclose(x, [3.0, -6.0, 2.0 * min(Q[0] + 1.0, 1.5), 10.0 * min(Q[2] + 1.0, 1.5), 7.0], rtol=1e-6)


def test_whole_vector_normalization_like_vecnormalize(tmp_path: Path) -> None:
    mean = [0.1, -0.2, 0.3, 0.0, 0.5, 0.6]
    var = [0.04, 0.25, 1.0, 4.0, 0.01, 1e-6]
    desc = describe(tmp_path, f"observation: [joint_pos]\nnormalize: {{mean: {mean}, var: {var}, epsilon: 1.0e-8, clip: 5.0}}\n")
    expected = np.clip((Q - mean) / np.sqrt(np.array(var) + 1e-8), -5.0, 5.0)
    np.testing.assert_allclose(build(desc), expected, rtol=1e-6)
    desc = describe(tmp_path, "observation: [joint_pos]\nnormalize: {mean: 1.0, std: 2.0}\n")
    np.testing.assert_allclose(build(desc), (Q - 1.0) / 2.0, rtol=1e-6)


def test_the_input_has_the_models_dtype_and_batch_shape(tmp_path: Path) -> None:
    builder = ObservationBuilder(describe(tmp_path, "model: {file: policy.onnx, dtype: float64}\nobservation: [joint_pos]\n"))
    x = builder.build(Q, QD, np.zeros(6))
    assert x.dtype == np.float64 and x.shape == (1, 6) and x is builder.batch
    assert ObservationBuilder(describe(tmp_path, "observation: [joint_pos]\n")).batch.dtype == np.float32


def test_a_goal_term_without_a_goal_raises_missing_goal(tmp_path: Path) -> None:
    builder = ObservationBuilder(describe(tmp_path, "observation: [joint_pos, tcp_error]\n"))
    assert builder.needs_goal
    with pytest.raises(MissingGoal):
        builder.build(Q, QD, np.zeros(6))
    plain = ObservationBuilder(describe(tmp_path, "observation: [joint_pos, tcp]\n"))
    assert not plain.needs_goal and plain.build(Q, QD, np.zeros(6)).shape == (1, 9)


def test_every_body_position_matches_mujoco() -> None:
    """The URDF chain (roarm.kinematics) and the MJCF the sim runs place every link at the same point."""
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(ROOT / "sim_node" / "models" / "roarm_m3.xml"))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(3)
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, i) for i in range(model.njnt)]
    assert names == ["base", "shoulder", "elbow", "wrist", "roll", "gripper"]
    for _ in range(50):
        q = rng.uniform(LOWER, UPPER)
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        for body in ("base_link", "link1", "link2", "link3", "link4", "link5", "gripper_link"):
            np.testing.assert_allclose(kinematics.body_position(q, body), data.body(body).xpos, atol=2e-4, err_msg=body)
    np.testing.assert_array_equal(kinematics.body_position(q, "world"), np.zeros(3))
    np.testing.assert_allclose(kinematics.body_position(q, "hand_tcp"), kinematics.fk(q))
    with pytest.raises(ValueError, match="unknown body 'finger'"):
        kinematics.body_position(q, "finger")


# -- actions ------------------------------------------------------------------------------------

def test_absolute_offset_and_delta_modes(tmp_path: Path) -> None:
    base = "joints: [base, elbow]\ndefault_pose: {base: 0.2, elbow: 1.0}\nobservation: [joint_pos]\n"
    raw = np.array([0.4, -0.6], dtype=np.float32)
    absolute = ActionMapper(describe(tmp_path, base + "action: {mode: absolute, scale: [0.5, 1.0], offset: 0.1}\n"))
    t = absolute(raw, Q)
    np.testing.assert_allclose(t[[0, 2]], [0.5 * 0.4 + 0.1, 1.0 * -0.6 + 0.1], rtol=1e-6)
    offset = ActionMapper(describe(tmp_path, base + "action: {mode: offset, scale: 0.5, offset: [0.0, 0.05]}\n"))
    np.testing.assert_allclose(offset(raw, Q)[[0, 2]], [0.2 + 0.2, 1.0 - 0.3 + 0.05], rtol=1e-6)
    delta = ActionMapper(describe(tmp_path, base + "action: {mode: delta, scale: 0.1}\n"))
    np.testing.assert_allclose(delta(raw, Q)[[0, 2]], [Q[0] + 0.04, Q[2] - 0.06], rtol=1e-6)


def test_undriven_joints_hold_the_default_pose_or_where_they_were(tmp_path: Path) -> None:
    base = "joints: [base, shoulder, elbow, wrist, roll]\ndefault_pose: {gripper: 0.168, elbow: 1.0}\nobservation: [joint_pos]\n"
    raw = np.zeros(5)
    at_default = ActionMapper(describe(tmp_path, base + "action: {hold: default}\n"))
    assert at_default(raw, Q)[5] == pytest.approx(0.168)
    where = ActionMapper(describe(tmp_path, base + "action: {hold: current}\n"))
    assert where(raw, Q)[5] == pytest.approx(Q[5])
    moved = Q.copy()
    moved[5] = 0.1
    assert where(raw, moved)[5] == pytest.approx(Q[5])  # latched, does not follow (or sag with) the arm
    where.reset()
    assert where(raw, moved)[5] == pytest.approx(0.1)


def test_targets_are_clamped_to_the_limits_and_raw_output_is_clipped(tmp_path: Path) -> None:
    mapper = ActionMapper(describe(tmp_path, "observation: [joint_pos]\naction: {clip: [-1.0, 2.0], scale: 10.0}\n"))
    t = mapper(np.array([5.0, -5.0, 5.0, 0.01, 0.0, 0.1]), Q)
    np.testing.assert_allclose(t, np.clip([20.0, -10.0, 20.0, 0.1, 0.0, 1.0], LOWER, UPPER))
    np.testing.assert_allclose(mapper.last_action, [2.0, -1.0, 2.0, 0.01, 0.0, 0.1])
    assert t is not mapper(np.zeros(6), Q)


def test_a_non_finite_output_gives_non_finite_targets_and_keeps_the_last_action(tmp_path: Path) -> None:
    mapper = ActionMapper(describe(tmp_path, "joints: [base, shoulder]\nobservation: [joint_pos]\naction: {hold: default}\n"))
    mapper(np.array([0.1, 0.2]), Q)
    for bad in ([np.nan, 0.5], [np.inf, 0.5], [0.1, -np.inf]):
        t = mapper(np.array(bad), Q)
        assert np.all(np.isnan(t[:2])) and np.all(np.isfinite(t[2:])), t
        np.testing.assert_allclose(mapper.last_action, [0.1, 0.2])


def test_a_wrong_output_size_says_what_to_fix(tmp_path: Path) -> None:
    mapper = ActionMapper(describe(tmp_path, "joints: [base, shoulder]\nobservation: [joint_pos]\n"))
    with pytest.raises(ActionSizeError, match="3 values, the description's joints are 2 .*one joint per output"):
        mapper(np.zeros((1, 3)), Q)


# -- recurrent state, and the whole adapter around a real model -----------------------------------

def test_recurrent_state_is_carried_and_zeroed_on_reset(tmp_path: Path) -> None:
    byo_onnx.recurrent(tmp_path / "policy.onnx", 6, 2, state=4)
    (tmp_path / "policy.yaml").write_text("joints: [base, shoulder]\nobservation: [{term: joint_pos, joints: [base, shoulder, elbow, wrist, roll, gripper]}]\n"
                                          "model: {file: policy.onnx, input: obs, output: actions}\n"
                                          "recurrent: [{input: h_in, output: h_out}]\n")
    desc = d.load(tmp_path)
    session = byo_onnx.session(desc.model.path)
    state = RecurrentState.for_session(desc.recurrent, session, desc.source)
    builder = ObservationBuilder(desc)
    obs = builder.build(Q, QD, np.zeros(2))
    total = float(np.sum(obs))
    for step in range(1, 4):
        actions, h_out = session.run(["actions", *state.output_names], {"obs": obs, **state.inputs})
        state.update({"h_out": h_out})
        np.testing.assert_allclose(actions[0], [step * total] * 2, rtol=1e-5)
    state.reset()
    assert not np.any(state.inputs["h_in"])
    actions, _ = session.run(["actions", "h_out"], {"obs": obs, **state.inputs})
    np.testing.assert_allclose(actions[0], [total] * 2, rtol=1e-5)


def test_recurrent_names_the_model_lacks_are_clear_errors(tmp_path: Path) -> None:
    byo_onnx.recurrent(tmp_path / "policy.onnx", 6, 2)
    session = byo_onnx.session(tmp_path / "policy.onnx")
    with pytest.raises(d.PolicyDescriptionError, match=r"recurrent\[0\].output: the model has no output 'hidden'"):
        RecurrentState.for_session([d.RecurrentPair("h_in", "hidden")], session, "policy.yaml")


def test_an_isaac_lab_layout_policy_end_to_end(tmp_path: Path) -> None:
    """24 inputs (joint_pos_rel 6, joint_vel_rel 6, pose command 7, last action 5) -> 5 joint targets."""
    params = byo_onnx.mlp(tmp_path / "policy.onnx", 24, 5)
    (tmp_path / "policy.yaml").write_text("""\
model: {file: policy.onnx, input: obs, output: actions, batch: fixed}
period: 0.0333333333
joints: [base_link_to_link1, link1_to_link2, link2_to_link3, link3_to_link4, link4_to_link5]
default_pose: {link1_to_link2: 0.704, link2_to_link3: 0.228, link3_to_link4: 1.095, link5_to_gripper_link: 0.168}
observation:
  - {term: joint_pos_rel, joints: [base, shoulder, elbow, wrist, roll, gripper]}
  - {term: joint_vel_rel, joints: [base, shoulder, elbow, wrist, roll, gripper]}
  - {term: goal_pose, body: gripper_link, frame: world, quat: wxyz}
  - last_action
action: {mode: offset, scale: 0.5, hold: default}
""")
    desc = d.load(tmp_path)
    session = byo_onnx.session(desc.model.path)
    builder, mapper = ObservationBuilder(desc), ActionMapper(desc)
    default = np.array(desc.default_pose)
    goal = Goal(np.array([0.1, -0.2, 0.2]))
    last = np.zeros(5)
    for _ in range(3):
        x = builder.build(Q, QD, mapper.last_action, goal)
        expected_x = np.concatenate([Q - default, QD, goal.position, [1, 0, 0, 0], last])
        np.testing.assert_allclose(x[0], expected_x, rtol=1e-6, atol=1e-7)
        raw = session.run(["actions"], {"obs": x})[0]
        np.testing.assert_allclose(raw[0], byo_onnx.mlp_reference(params, expected_x), rtol=1e-4, atol=1e-5)
        targets = mapper(raw, Q)
        want = np.clip(np.concatenate([default[:5] + 0.5 * raw[0], [0.168]]), LOWER, UPPER)
        np.testing.assert_allclose(targets, want, rtol=1e-6)
        last = raw[0].astype(float)
