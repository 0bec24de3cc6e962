"""Measured state + goal + last action -> the model's input vector, as its description says.

Built once per policy; every control step then only refills preallocated
buffers (the adapter's budget is a few tens of microseconds, so the terms are
compiled into small writer functions at start and no array is allocated per
step except the one a body's forward kinematics returns).

Frames: ``world`` is the URDF's root link (the table under the arm), where
goals and the robot's TCP are expressed; ``base`` is ``base_link``, 0.0701 m
higher and not rotated (roarm.kinematics.WORLD_TO_BASE), so a position moves
between them by that offset and an orientation stays the same.
"""

from __future__ import annotations

from collections.abc import Callable
import numpy as np

from bus.errors import HilError
from policy_node.policy.base import Goal
from policy_node.policy.description import Normalize, ObservationTerm, PolicyDescription
from roarm.kinematics import WORLD_TO_BASE, body_position, fk

if any(WORLD_TO_BASE[1]):
    raise ImportError("roarm.kinematics.WORLD_TO_BASE is rotated: observation.py only shifts between world and base")
BASE_OFFSET = np.array(WORLD_TO_BASE[0], dtype=float)


class MissingGoal(HilError, LookupError):
    """The observation needs a Cartesian goal and none was given (callers hold instead of acting)."""


Writer = Callable[[np.ndarray, np.ndarray, np.ndarray, "Goal | None", "np.ndarray | None", dict], None]


class ObservationBuilder:
    """Fills the model's input for one step.

    ``batch`` is the array to feed (shape (1, N), the description's dtype);
    ``vector`` is its one row. ``build`` returns ``batch``; its contents are
    valid until the next call.
    """

    def __init__(self, desc: PolicyDescription) -> None:
        self.desc = desc
        self.size = desc.observation_size
        self.needs_goal = desc.needs_goal
        self.batch = np.zeros((1, self.size), dtype=np.dtype(desc.model.dtype))
        self.vector = self.batch[0]
        self._work = np.zeros(self.size)
        self._writers: list[Writer] = []
        start = 0
        for term in desc.observation:
            view = self._work[start : start + term.size]
            self._writers.append(_writer(term, view, np.asarray(desc.default_pose, dtype=float)))
            start += term.size
        self._normalize = _normalizer(desc.normalize, self._work, self.vector)

    def build(
        self,
        position: np.ndarray,
        velocity: np.ndarray,
        last_action: np.ndarray,
        goal: Goal | None = None,
        tcp: np.ndarray | None = None,
    ) -> np.ndarray:
        """The input for measured ``position``/``velocity`` (bus order, 6), the previous raw action and the goal.

        ``tcp`` is the robot's measured TCP (world), used for the ``tcp``
        body instead of forward kinematics when given. Raises MissingGoal
        when a goal term has no goal.
        """
        if goal is None and self.needs_goal:
            raise MissingGoal("the policy observes a Cartesian goal and there is none yet")
        cache: dict[str, np.ndarray] = {}
        for write in self._writers:
            write(position, velocity, last_action, goal, tcp, cache)
        self._normalize()
        return self.batch


def _body(name: str, position: np.ndarray, tcp: np.ndarray | None, cache: dict) -> np.ndarray:
    """World position of a body, once per step however many terms need it."""
    found = cache.get(name)
    if found is None:
        if name == "tcp":
            found = tcp if tcp is not None else fk(position)
        else:
            found = body_position(position, name)
        cache[name] = found
    return found


def _writer(term: ObservationTerm, out: np.ndarray, default_pose: np.ndarray) -> Writer:
    """A function that writes ``term`` (raw value, then offset, clip, scale) into ``out``."""
    raw = _raw_writer(term, out, default_pose)
    offset = None if term.offset is None else np.asarray(term.offset, dtype=float)
    scale = None if term.scale is None else np.asarray(term.scale, dtype=float)
    low, high = term.clip if term.clip is not None else (None, None)
    if term.kind == "constant":
        # Written once: nothing in a step touches it again.
        raw(None, None, None, None, None, {})  # type: ignore[arg-type]
        _post(out, offset, low, high, scale)
        return _nothing
    if offset is None and low is None and scale is None:
        return raw

    def write(position: np.ndarray, velocity: np.ndarray, last_action: np.ndarray, goal: Goal | None,
              tcp: np.ndarray | None, cache: dict) -> None:
        raw(position, velocity, last_action, goal, tcp, cache)
        _post(out, offset, low, high, scale)

    return write


def _nothing(*_args: object) -> None:
    return None


def _post(out: np.ndarray, offset: np.ndarray | None, low: float | None, high: float | None,
          scale: np.ndarray | None) -> None:
    """Isaac Lab's order: (offset,) clip, then scale."""
    if offset is not None:
        np.add(out, offset, out=out)
    if low is not None:
        np.maximum(out, low, out=out)
        np.minimum(out, high, out=out)
    if scale is not None:
        np.multiply(out, scale, out=out)


def _raw_writer(term: ObservationTerm, out: np.ndarray, default_pose: np.ndarray) -> Writer:  # noqa: C901 - one branch per term kind
    kind = term.kind
    index = np.asarray(term.joints, dtype=np.intp)
    if kind in ("joint_pos", "joint_vel", "joint_vel_rel", "sin", "cos", "joint_pos_rel"):
        use_velocity = kind in ("joint_vel", "joint_vel_rel")
        default = default_pose[index].copy()
        func = {"sin": np.sin, "cos": np.cos}.get(kind)
        rel = kind == "joint_pos_rel"

        span = _as_slice(term.joints)

        def joints(position: np.ndarray, velocity: np.ndarray, *_: object) -> None:
            source = velocity if use_velocity else position
            if span is not None:
                out[:] = source[span]
            else:
                np.take(source, index, out=out)
            if rel:
                np.subtract(out, default, out=out)
            elif func is not None:
                func(out, out=out)

        return joints
    if kind == "gripper":
        def gripper(position: np.ndarray, *_: object) -> None:
            out[0] = position[5]

        return gripper
    if kind == "last_action":
        def last(position: np.ndarray, velocity: np.ndarray, last_action: np.ndarray, *_: object) -> None:
            out[:] = last_action

        return last
    if kind == "constant":
        def constant(*_: object) -> None:
            out[:] = term.value

        return constant
    shift = BASE_OFFSET if term.frame == "base" else None
    body = term.body
    if kind == "tcp":
        def measured(position: np.ndarray, velocity: np.ndarray, last_action: np.ndarray, goal: Goal | None,
                     tcp: np.ndarray | None, cache: dict) -> None:
            out[:] = _body(body, position, tcp, cache)
            if shift is not None:
                np.subtract(out, shift, out=out)

        return measured
    if kind == "tcp_error":
        def error(position: np.ndarray, velocity: np.ndarray, last_action: np.ndarray, goal: Goal | None,
                  tcp: np.ndarray | None, cache: dict) -> None:
            np.subtract(goal.position, _body(body, position, tcp, cache), out=out)  # type: ignore[union-attr]

        return error
    position_out = out[:3]
    quat_out = out[3:7] if kind == "goal_pose" else None
    order = (0, 1, 2, 3) if term.quat_order == "wxyz" else (1, 2, 3, 0)
    default_quat = np.asarray(term.default_quat, dtype=float)[list(order)]

    def goal_writer(position: np.ndarray, velocity: np.ndarray, last_action: np.ndarray, goal: Goal | None,
                    *_: object) -> None:
        position_out[:] = goal.position  # type: ignore[union-attr]
        if shift is not None:
            np.subtract(position_out, shift, out=position_out)
        if quat_out is not None:
            q = goal.quat  # type: ignore[union-attr]
            if q is None:
                quat_out[:] = default_quat
            else:
                quat_out[0], quat_out[1], quat_out[2], quat_out[3] = q[order[0]], q[order[1]], q[order[2]], q[order[3]]

    return goal_writer


def _as_slice(index: tuple[int, ...]) -> slice | None:
    """A run of consecutive joints as a slice: copying a slice costs a third of np.take."""
    if index and list(index) == list(range(index[0], index[0] + len(index))):
        return slice(index[0], index[0] + len(index))
    return None


def _normalizer(norm: Normalize | None, work: np.ndarray, out: np.ndarray) -> Callable[[], None]:
    """Copy the terms into the model's input, normalizing the whole vector on the way if asked."""
    if norm is None:
        def copy() -> None:
            np.copyto(out, work, casting="same_kind")

        return copy
    mean = np.asarray(norm.mean, dtype=float)
    inv_std = 1.0 / np.asarray(norm.std, dtype=float)
    tmp = np.zeros_like(work)
    clip = norm.clip

    def normalize() -> None:
        np.subtract(work, mean, out=tmp)
        np.multiply(tmp, inv_std, out=tmp)
        if clip is not None:
            np.maximum(tmp, -clip, out=tmp)
            np.minimum(tmp, clip, out=tmp)
        np.copyto(out, tmp, casting="same_kind")

    return normalize
