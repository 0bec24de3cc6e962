"""roarm.kinematics against hand-computed values from docs/roarm_m3.md's aligned-frames description."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roarm import kinematics as kin
from roarm.joints import LOWER, UPPER, pose

# Offsets of the aligned frames (docs/roarm_m3.md), arm straight up at q = 0.
BASE_Z = 0.0701
SHOULDER = np.array([0.0, 0.0, 0.051959])
UPPER_ARM = np.array([0.030002, 0.0, 0.236815])
FOREARM = np.array([0.0, 0.0, 0.144586])
WRIST = np.array([0.015147, 0.0, 0.053653])
TCP = np.array([0.0, 0.0, 0.115428])


def rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def aligned_fk(q: np.ndarray) -> np.ndarray:
    """The same chain written independently: aligned frames, y pitch axes."""
    r_base = rot_z(q[0])
    r_sh = r_base @ rot_y(q[1])
    r_el = r_sh @ rot_y(q[2])
    r_wr = r_el @ rot_y(q[3])
    p = np.array([0, 0, BASE_Z]) + r_base @ SHOULDER + r_sh @ UPPER_ARM + r_el @ FOREARM + r_wr @ WRIST
    return p + r_wr @ rot_z(q[4]) @ TCP


def test_fk_zero_is_straight_up() -> None:
    expected = np.array([0.030002 + 0.015147, 0.0, BASE_Z + 0.051959 + 0.236815 + 0.144586 + 0.053653 + 0.115428])
    np.testing.assert_allclose(kin.fk(np.zeros(6)), expected, atol=1e-5)  # URDF's 1.5708 for pi/2


def test_fk_home_points_forward() -> None:
    # elbow at +pi/2 swings forearm, wrist and tool (0.015147, 0, 0.313667) to +x.
    expected = np.array([0.030002 + 0.313667, 0.0, BASE_Z + 0.051959 + 0.236815 - 0.015147])
    np.testing.assert_allclose(kin.fk(pose("home")), expected, atol=1e-4)  # URDF writes pi/2 as 1.5708


def test_fk_matches_independent_aligned_chain() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        q = rng.uniform(LOWER, UPPER)
        np.testing.assert_allclose(kin.fk(q), aligned_fk(q), atol=2e-4)


def test_base_yaw_turns_left_and_roll_and_gripper_do_not_move_tcp() -> None:
    q = pose("home")
    q[0] = math.pi / 2
    tcp = kin.fk(q)
    assert tcp[1] > 0.3 and abs(tcp[0]) < 1e-3  # + base = left (+y)
    q2 = q.copy()
    q2[4], q2[5] = 1.0, 1.2
    np.testing.assert_allclose(kin.fk(q2), tcp, atol=1e-9)


def test_jacobian_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    eps = 1e-6
    for _ in range(20):
        q = rng.uniform(LOWER, UPPER)
        numeric = np.zeros((3, 5))
        for i in range(5):
            dq = np.zeros(6)
            dq[i] = eps
            numeric[:, i] = (kin.fk(q + dq) - kin.fk(q - dq)) / (2 * eps)
        np.testing.assert_allclose(kin.jacobian(q), numeric, atol=1e-7)


def test_ik_step_moves_closer_and_respects_limits() -> None:
    q = pose("home")
    q[5] = 0.7
    goal = kin.fk(np.array([0.4, 0.3, 1.2, 0.2, 0.0, 0.0]))
    nxt = kin.ik_step(q, goal, max_step=0.1)
    assert np.linalg.norm(goal - kin.fk(nxt)) < np.linalg.norm(goal - kin.fk(q))
    assert np.max(np.abs(nxt - q)) <= 0.1 + 1e-12
    assert nxt[5] == 0.7
    far = kin.ik_step(pose("home"), np.array([5.0, 0.0, 0.0]), max_step=10.0)
    assert np.all(far >= LOWER) and np.all(far <= UPPER)


def test_solve_ik_converges_on_sampled_goals() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        goal = kin.sample_reachable_goal(rng)
        q, residual = kin.solve_ik(goal, pose("home"))
        assert residual < 1e-4
        np.testing.assert_allclose(kin.fk(q), goal, atol=1e-4)
        assert np.all(q >= LOWER) and np.all(q <= UPPER)


def test_sampled_goals_are_in_front_above_table_and_deterministic() -> None:
    goals = [kin.sample_reachable_goal(np.random.default_rng(seed)) for seed in range(200)]
    for goal in goals:
        assert goal[0] > 0 and goal[2] >= kin.MIN_GOAL_HEIGHT
        assert math.hypot(goal[0], goal[1]) >= kin.MIN_GOAL_RADIUS
    again = kin.sample_reachable_goal(np.random.default_rng(7))
    np.testing.assert_array_equal(again, goals[7])


@pytest.mark.parametrize("target", [np.array([2.0, 0.0, 0.3]), np.array([0.0, 0.0, 1.0])])
def test_solve_ik_unreachable_reports_residual(target: np.ndarray) -> None:
    q, residual = kin.solve_ik(target, pose("home"))
    assert residual == pytest.approx(np.linalg.norm(target - kin.fk(q)))
    assert residual > 1e-3


def test_fk_and_fk_frames_agree() -> None:
    rng = np.random.default_rng(4)
    for q in rng.uniform(LOWER, UPPER, (200, 6)):
        frames = kin.fk_frames(q)
        assert len(frames) == len(kin.FRAME_NAMES)
        np.testing.assert_allclose(kin.fk(q), frames[-1][:3, 3], atol=1e-12)
