"""Forward and inverse kinematics of the RoArm-M3 position chain (numpy only).

The chain is Waveshare's URDF (roarm_description, see docs/roarm_m3.md), written
as fixed joint origins (xyz + rpy) each followed by a rotation about local z.
Every robot target reports its TCP by this one function, so a Cartesian goal
is judged the same way in mock, MuJoCo, Isaac Sim and on the real arm.

Only the first five joints move the tool centre point (the gripper jaw does
not), and the roll axis passes through the TCP, so the position depends on
base, shoulder, elbow and wrist: a 4-DOF chain for a 3-D target, redundant by
one (the wrist pitch), which the damped least-squares IK resolves smoothly.
"""

from __future__ import annotations

import math

import numpy as np

from roarm.joints import LOWER, UPPER

# (xyz, rpy) of the fixed part of each URDF joint, parent -> child.
WORLD_TO_BASE = ((0.0, 0.0, 0.0701), (0.0, 0.0, 0.0))
JOINT_ORIGINS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),  # base_link_to_link1 (base yaw)
    ((0.0, 0.0, 0.051959), (-1.5708, -1.5708, 0.0)),  # link1_to_link2 (shoulder)
    ((0.236815, 0.030002, 0.0), (0.0, 0.0, 1.5708)),  # link2_to_link3 (elbow)
    ((0.0, -0.144586, 0.0), (0.0, 0.0, 0.0)),  # link3_to_link4 (wrist)
    ((0.015147, -0.053653, 0.0), (1.5708, 1.5708, 0.0)),  # link4_to_link5 (roll)
)
LINK5_TO_TCP = ((0.0, 0.0, 0.115428), (1.5708, -1.5708, 0.0))
FRAME_NAMES = ("base_link", "link1", "link2", "link3", "link4", "link5", "hand_tcp")
# link5_to_gripper_link: the jaw's hinge. Its origin does not move with the
# gripper angle (the jaw turns about its own z), so its position is fixed in link5.
LINK5_TO_GRIPPER = ((0.0, 0.018821, 0.052035), (-1.5708, -1.5708, 0.0))
# Every URDF link whose origin body_position can place; "world" is the URDF's
# massless root link, the table-level origin base_link stands on.
BODY_NAMES = ("world", *FRAME_NAMES[:-1], "gripper_link", "hand_tcp")

# Joint ranges that real reaching tasks use: in front of the robot, elbow bent
# forward, wrist not folded back. Goals sampled here are reachable without
# passing through the base and without touching the joint limits.
TASK_LOWER = np.array([-1.3, -0.4, 0.6, -1.0, 0.0, 0.0])
TASK_UPPER = np.array([1.3, 1.0, 2.3, 1.0, 0.0, 0.0])
MIN_GOAL_HEIGHT = 0.06  # m above the world origin (the table)
MIN_GOAL_RADIUS = 0.15  # m from the base yaw axis


def _transform(xyz: tuple[float, float, float], rpy: tuple[float, float, float]) -> np.ndarray:
    """URDF origin: translate, then rotate Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    t = np.eye(4)
    t[:3, :3] = [
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ]
    t[:3, 3] = xyz
    return t


_BASE = _transform(*WORLD_TO_BASE)
_ORIGINS = np.stack([_transform(*origin) for origin in JOINT_ORIGINS])  # (5, 4, 4)
_TCP = _transform(*LINK5_TO_TCP)
# The same transforms as nested float tuples (3x4 affine rows) for fk's scalar loop.
_AFFINE = tuple(tuple(tuple(float(v) for v in row) for row in origin[:3]) for origin in _ORIGINS)
_AFFINE_BASE = tuple(tuple(float(v) for v in row) for row in _BASE[:3])
_TCP_POINT = tuple(float(v) for v in _TCP[:3, 3])
# Origin of each body in the frame whose chain body_position folds it through:
# (point, index of the last joint that moves it, 0 = none).
_BODY_POINTS: dict[str, tuple[tuple[float, float, float], int]] = {
    "base_link": ((0.0, 0.0, 0.0), 0),
    **{f"link{i}": (tuple(float(v) for v in _ORIGINS[i - 1][:3, 3]), i - 1) for i in range(1, 6)},
    "gripper_link": (LINK5_TO_GRIPPER[0], 5),
    "hand_tcp": (_TCP_POINT, 5),
}


def _local_transforms(q: np.ndarray) -> np.ndarray:
    """origin_i @ Rz(q_i) for the five joints, (5, 4, 4), in one batched product."""
    angles = np.asarray(q, dtype=float)[:5]
    c, s = np.cos(angles), np.sin(angles)
    rz = np.zeros((5, 4, 4))
    rz[:, 0, 0] = c
    rz[:, 0, 1] = -s
    rz[:, 1, 0] = s
    rz[:, 1, 1] = c
    rz[:, 2, 2] = 1.0
    rz[:, 3, 3] = 1.0
    return _ORIGINS @ rz


def fk_frames(q: np.ndarray) -> list[np.ndarray]:
    """World poses (4x4) of base_link, link1..link5 and hand_tcp (FRAME_NAMES).

    Joint i rotates about the local z axis of frame i + 1 (link1..link5).
    """
    local = _local_transforms(q)
    frames = [_BASE]
    current = _BASE
    for i in range(5):
        current = current @ local[i]
        frames.append(current)
    frames.append(current @ _TCP)
    return frames


def fk(q: np.ndarray) -> np.ndarray:
    """TCP position (m, world frame) for a bus-order joint vector (gripper ignored).

    The same chain as fk_frames, applied to the TCP point right to left in
    plain floats: the robot nodes call this every control step, and for one
    point a handful of scalar products beats building 4x4 numpy matrices.
    """
    x, y, z = _TCP_POINT
    for i in range(4, -1, -1):
        c, s = math.cos(q[i]), math.sin(q[i])
        x, y = c * x - s * y, s * x + c * y  # Rz(q_i)
        (r00, r01, r02, t0), (r10, r11, r12, t1), (r20, r21, r22, t2) = _AFFINE[i]
        x, y, z = (r00 * x + r01 * y + r02 * z + t0, r10 * x + r11 * y + r12 * z + t1,
                   r20 * x + r21 * y + r22 * z + t2)
    (r00, r01, r02, t0), (r10, r11, r12, t1), (r20, r21, r22, t2) = _AFFINE_BASE
    return np.array((r00 * x + r01 * y + r02 * z + t0, r10 * x + r11 * y + r12 * z + t1,
                     r20 * x + r21 * y + r22 * z + t2))


def body_position(q: np.ndarray, name: str) -> np.ndarray:
    """World position (m) of a URDF link's origin (BODY_NAMES) for a bus-order joint vector.

    The same scalar chain as ``fk``, cut where the body hangs: link i moves
    with joints 0..i-2, gripper_link and hand_tcp with the first five. Policies
    trained to put another body than the TCP on a goal (Isaac Lab's reach
    tasks use gripper_link) are judged and observed with this.
    """
    if name == "world":
        return np.zeros(3)
    try:
        (x, y, z), moved_by = _BODY_POINTS[name]
    except KeyError:
        raise ValueError(f"unknown body {name!r}; known: {', '.join(BODY_NAMES)}") from None
    for i in range(moved_by - 1, -1, -1):
        c, s = math.cos(q[i]), math.sin(q[i])
        x, y = c * x - s * y, s * x + c * y  # Rz(q_i)
        (r00, r01, r02, t0), (r10, r11, r12, t1), (r20, r21, r22, t2) = _AFFINE[i]
        x, y, z = (r00 * x + r01 * y + r02 * z + t0, r10 * x + r11 * y + r12 * z + t1,
                   r20 * x + r21 * y + r22 * z + t2)
    (r00, r01, r02, t0), (r10, r11, r12, t1), (r20, r21, r22, t2) = _AFFINE_BASE
    return np.array((r00 * x + r01 * y + r02 * z + t0, r10 * x + r11 * y + r12 * z + t1,
                     r20 * x + r21 * y + r22 * z + t2))


def jacobian(q: np.ndarray) -> np.ndarray:
    """Positional Jacobian (3x5) of the TCP w.r.t. base..roll, analytic.

    For a revolute joint with world axis z_i through p_i the column is
    z_i x (p_tcp - p_i); exact, and cheaper than finite differences.
    """
    frames = fk_frames(q)
    tcp = frames[-1][:3, 3]
    columns = [np.cross(frame[:3, 2], tcp - frame[:3, 3]) for frame in frames[1:6]]
    return np.stack(columns, axis=1)


def ik_step(
    q: np.ndarray,
    target_xyz: np.ndarray,
    damping: float = 0.05,
    max_step: float = 0.2,
) -> np.ndarray:
    """One damped least-squares step toward ``target_xyz``; a new 6-vector.

    Damping keeps the step bounded near singularities (arm stretched out or
    folded); ``max_step`` (rad, largest joint change) keeps a policy that
    calls this once per control period from commanding jumps. The result is
    clamped to the joint limits; the gripper is left unchanged.
    """
    q = np.asarray(q, dtype=float)
    error = np.asarray(target_xyz, dtype=float) - fk(q)
    j = jacobian(q)
    dq = j.T @ np.linalg.solve(j @ j.T + damping**2 * np.eye(3), error)
    largest = float(np.max(np.abs(dq)))
    if largest > max_step:
        dq *= max_step / largest
    out = q.copy()
    out[:5] = np.clip(q[:5] + dq, LOWER[:5], UPPER[:5])
    return out


def solve_ik(
    target_xyz: np.ndarray,
    q0: np.ndarray,
    tol: float = 1e-4,
    iters: int = 200,
) -> tuple[np.ndarray, float]:
    """Iterate ``ik_step`` from ``q0``; returns (solution, residual in m).

    The damping shrinks as the error does, so the last steps converge fast
    (Levenberg-Marquardt style) while far steps stay well behaved. The best
    iterate is returned even if ``tol`` is not reached: check the residual.
    """
    target = np.asarray(target_xyz, dtype=float)
    q = np.asarray(q0, dtype=float).copy()
    best_q, best_err = q.copy(), float(np.linalg.norm(target - fk(q)))
    for _ in range(iters):
        if best_err <= tol:
            break
        damping = min(0.05, max(1e-3, 0.5 * best_err))
        q = ik_step(q, target, damping=damping, max_step=0.3)
        err = float(np.linalg.norm(target - fk(q)))
        if err < best_err:
            best_q, best_err = q.copy(), err
    return best_q, best_err


def sample_task_pose(rng: np.random.Generator) -> np.ndarray:
    """Joint vector within TASK_LOWER..TASK_UPPER whose TCP is a sensible goal."""
    while True:
        q = rng.uniform(TASK_LOWER, TASK_UPPER)
        tcp = fk(q)
        if tcp[2] >= MIN_GOAL_HEIGHT and math.hypot(tcp[0], tcp[1]) >= MIN_GOAL_RADIUS and tcp[0] > 0.0:
            return q


def sample_reachable_goal(rng: np.random.Generator) -> np.ndarray:
    """A TCP goal (m) that the arm can reach: FK of a pose from sample_task_pose.

    In front of the robot (x > 0), above the table, away from the base, so a
    reach policy is trained and tested on goals a real task would use.
    """
    return fk(sample_task_pose(rng))
