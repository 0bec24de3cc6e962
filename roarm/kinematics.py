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
from collections.abc import Sequence

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
_AFFINE_TCP = tuple(tuple(float(v) for v in row) for row in _TCP[:3])
_TCP_POINT = tuple(float(v) for v in _TCP[:3, 3])
# Origin of each body in the frame whose chain body_position folds it through:
# (point, index of the last joint that moves it, 0 = none).
_BODY_POINTS: dict[str, tuple[tuple[float, float, float], int]] = {
    "base_link": ((0.0, 0.0, 0.0), 0),
    **{f"link{i}": (tuple(float(v) for v in _ORIGINS[i - 1][:3, 3]), i - 1) for i in range(1, 6)},
    "gripper_link": (LINK5_TO_GRIPPER[0], 5),
    "hand_tcp": (_TCP_POINT, 5),
}


Affine = tuple[tuple[float, float, float, float], ...]  # 3 rows of a 4x4 rigid transform


def _compose(a: Affine, b: Affine) -> Affine:
    """a @ b of two 3x4 affine transforms in Python floats, summed left to right."""
    return tuple(
        (row[0] * b[0][0] + row[1] * b[1][0] + row[2] * b[2][0],
         row[0] * b[0][1] + row[1] * b[1][1] + row[2] * b[2][1],
         row[0] * b[0][2] + row[1] * b[1][2] + row[2] * b[2][2],
         row[0] * b[0][3] + row[1] * b[1][3] + row[2] * b[2][3] + row[3])
        for row in a)


def _frames(q: np.ndarray) -> list[Affine]:
    """World poses of base_link, link1..link5 and hand_tcp as 3x4 affines.

    Scalar Python arithmetic (math.cos/sin, + and * in a fixed order), like
    ``fk``: no BLAS and no CPU-specific vector kernels, so the same joints
    give the same bits on every machine (the reach policy's training data
    depends on it, docs/policies.md "Reproducible training").
    """
    current: Affine = _AFFINE_BASE
    frames = [current]
    for i in range(5):
        c, s = math.cos(float(q[i])), math.sin(float(q[i]))
        rz: Affine = ((c, -s, 0.0, 0.0), (s, c, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0))
        current = _compose(_compose(current, _AFFINE[i]), rz)
        frames.append(current)
    frames.append(_compose(current, _AFFINE_TCP))
    return frames


def fk_frames(q: np.ndarray) -> list[np.ndarray]:
    """World poses (4x4) of base_link, link1..link5 and hand_tcp (FRAME_NAMES).

    Joint i rotates about the local z axis of frame i + 1 (link1..link5).
    """
    out = []
    for frame in _frames(q):
        matrix = np.eye(4)
        matrix[:3] = frame
        out.append(matrix)
    return out


def fk(q: np.ndarray) -> np.ndarray:
    """TCP position (m, world frame) for a bus-order joint vector (gripper ignored).

    The same chain as fk_frames, applied to the TCP point right to left in
    plain floats: the robot nodes call this every control step, and for one
    point a handful of scalar products beats building 4x4 numpy matrices.
    """
    return np.array(_to_world(q, _TCP_POINT, 5))


def fk_floats(q: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """``fk`` as a tuple of Python floats, the same bits (a robot node fills its JointState from it)."""
    return _to_world(q, _TCP_POINT, 5)


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
        point, moved_by = _BODY_POINTS[name]
    except KeyError:
        raise ValueError(f"unknown body {name!r}; known: {', '.join(BODY_NAMES)}") from None
    return np.array(_to_world(q, point, moved_by))


def _to_world(q: Sequence[float] | np.ndarray, point: tuple[float, float, float],
              moved_by: int) -> tuple[float, float, float]:
    """``point`` (in the frame after joint ``moved_by - 1``) in the world, through joints moved_by-1..0:
    the scalar chain both ``fk`` and ``body_position`` use (plain floats, a fixed order: same bits everywhere)."""
    x, y, z = point
    for i in range(moved_by - 1, -1, -1):
        c, s = math.cos(q[i]), math.sin(q[i])
        x, y = c * x - s * y, s * x + c * y  # Rz(q_i)
        (r00, r01, r02, t0), (r10, r11, r12, t1), (r20, r21, r22, t2) = _AFFINE[i]
        x, y, z = (r00 * x + r01 * y + r02 * z + t0, r10 * x + r11 * y + r12 * z + t1,
                   r20 * x + r21 * y + r22 * z + t2)
    (r00, r01, r02, t0), (r10, r11, r12, t1), (r20, r21, r22, t2) = _AFFINE_BASE
    return (r00 * x + r01 * y + r02 * z + t0, r10 * x + r11 * y + r12 * z + t1,
            r20 * x + r21 * y + r22 * z + t2)


def _jacobian_rows(q: np.ndarray) -> list[list[float]]:
    """The positional Jacobian (3x5) as Python floats: column i is z_i x (p_tcp - p_i)."""
    frames = _frames(q)
    tx, ty, tz = frames[-1][0][3], frames[-1][1][3], frames[-1][2][3]
    columns = []
    for frame in frames[1:6]:
        ax, ay, az = frame[0][2], frame[1][2], frame[2][2]
        dx, dy, dz = tx - frame[0][3], ty - frame[1][3], tz - frame[2][3]
        columns.append((ay * dz - az * dy, az * dx - ax * dz, ax * dy - ay * dx))
    return [[column[r] for column in columns] for r in range(3)]


def jacobian(q: np.ndarray) -> np.ndarray:
    """Positional Jacobian (3x5) of the TCP w.r.t. base..roll, analytic.

    For a revolute joint with world axis z_i through p_i the column is
    z_i x (p_tcp - p_i); exact, and cheaper than finite differences.
    """
    return np.array(_jacobian_rows(q))


def _solve3(a: list[list[float]], b: list[float]) -> list[float]:
    """x with a x = b for a symmetric positive definite 3x3 (Cramer's rule, fixed order of operations)."""
    (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = a
    c00, c01, c02 = a11 * a22 - a12 * a21, a12 * a20 - a10 * a22, a10 * a21 - a11 * a20
    det = a00 * c00 + a01 * c01 + a02 * c02
    c10, c11, c12 = a02 * a21 - a01 * a22, a00 * a22 - a02 * a20, a01 * a20 - a00 * a21
    c20, c21, c22 = a01 * a12 - a02 * a11, a02 * a10 - a00 * a12, a00 * a11 - a01 * a10
    return [(c00 * b[0] + c10 * b[1] + c20 * b[2]) / det,
            (c01 * b[0] + c11 * b[1] + c21 * b[2]) / det,
            (c02 * b[0] + c12 * b[1] + c22 * b[2]) / det]


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
    clamped to the joint limits; the gripper is left unchanged. Computed in
    Python floats in a fixed order (no BLAS or LAPACK), so the same input
    gives the same bits on every machine.
    """
    q = np.asarray(q, dtype=float)
    tcp = fk(q)
    error = [float(target_xyz[i]) - float(tcp[i]) for i in range(3)]
    j = _jacobian_rows(q)
    return _dls_step(q, error, j, damping, max_step)


def _dls_step(q: np.ndarray, error: list[float], j: list[list[float]], damping: float,
              max_step: float) -> np.ndarray:
    """One damped least-squares step of the five arm joints toward ``error`` through the 3x5
    Jacobian ``j``: scalar arithmetic in a fixed order (the same bits on every machine), the
    largest joint step capped at ``max_step``, the result clipped to the limits."""
    damp = damping**2
    jjt = [[sum(j[r][k] * j[c][k] for k in range(5)) + (damp if r == c else 0.0) for c in range(3)]
           for r in range(3)]
    y = _solve3(jjt, error)
    dq = np.array([j[0][k] * y[0] + j[1][k] * y[1] + j[2][k] * y[2] for k in range(5)])
    largest = float(np.max(np.abs(dq)))
    if largest > max_step:
        dq *= max_step / largest
    out = q.copy()
    out[:5] = np.clip(q[:5] + dq, LOWER[:5], UPPER[:5])
    return out


def body_ik_step(
    q: np.ndarray,
    target_xyz: np.ndarray,
    body: str,
    damping: float = 0.05,
    max_step: float = 0.2,
) -> np.ndarray:
    """``ik_step`` for any body of BODY_NAMES (``gripper_link``...): the Jacobian by central differences.

    Scalar arithmetic in a fixed order like ``ik_step``, so it is as
    reproducible; the gripper and anything past the body's chain are left
    unchanged.
    """
    if body in ("tcp", "hand_tcp"):
        return ik_step(q, target_xyz, damping, max_step)
    q = np.asarray(q, dtype=float)
    here = body_position(q, body)
    error = [float(target_xyz[i]) - float(here[i]) for i in range(3)]
    h = 1e-6
    columns = []
    for k in range(5):
        up, down = q.copy(), q.copy()
        up[k] += h
        down[k] -= h
        a, b = body_position(up, body), body_position(down, body)
        columns.append([(float(a[r]) - float(b[r])) / (2 * h) for r in range(3)])
    j = [[columns[k][r] for k in range(5)] for r in range(3)]
    return _dls_step(q, error, j, damping, max_step)


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
