"""The model's raw output -> six joint position targets in bus order, and the last action.

Per policy joint i (in the description's ``joints`` order), with ``a`` the
raw output after ``action.clip``:

- ``absolute``: target = scale_i * a_i + offset_i
- ``offset``:   target = default_i + scale_i * a_i + offset_i (Isaac Lab's
  JointPositionAction with ``use_default_offset``)
- ``delta``:    target = measured_i + scale_i * a_i + offset_i

Joints the policy does not drive are held: at the default pose
(``hold: default``, what Isaac Lab does with an arm joint no action term
drives) or where they were on the first step after a reset (``hold:
current``). Every target is then clamped to the robot's limits.

``last_action`` is the raw output after the clip (Isaac Lab's rsl_rl wrapper
clips before the environment stores the action), zero after a reset. An
output that is not finite gives non-finite targets for the driven joints
(the policy node's watchdog turns them into a hold) and does not become the
last action, so one bad step cannot poison every later observation.
"""

from __future__ import annotations

import math

import numpy as np

from bus.errors import HilError
from policy_node.interface.description import PolicyDescription
from roarm.joints import LOWER, UPPER


class ActionSizeError(HilError, ValueError):
    """The model returned a different number of values than the description's joints."""


class ActionMapper:
    """Maps one raw output per step; ``reset()`` at every episode start."""

    def __init__(self, desc: PolicyDescription, lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> None:
        self.desc = desc
        n = desc.action_size
        self.size = n
        self.last_action = np.zeros(n)
        self._index = np.asarray(desc.joint_index, dtype=np.intp)
        run = list(desc.joint_index) == list(range(desc.joint_index[0], desc.joint_index[0] + n)) if n else False
        # Consecutive joints (the usual case) are written through a slice: cheaper than fancy indexing.
        self._where: slice | np.ndarray = slice(desc.joint_index[0], desc.joint_index[0] + n) if run else self._index
        self._scale = np.asarray(desc.action.scale, dtype=float)
        offset = np.asarray(desc.action.offset, dtype=float)
        default = np.asarray(desc.default_pose, dtype=float)
        self._constant = default[self._index] + offset if desc.action.mode == "offset" else offset
        self._delta = desc.action.mode == "delta"
        self._clip = desc.action.clip
        self._lower = np.asarray(LOWER if lower is None else lower, dtype=float)
        self._upper = np.asarray(UPPER if upper is None else upper, dtype=float)
        self._hold_default = desc.action.hold == "default"
        self._hold = np.clip(default, self._lower, self._upper) if self._hold_default else None
        self._raw = np.zeros(n)
        self._driven = np.zeros(n)
        self._measured = np.zeros(n)
        self._targets = np.zeros(len(self._lower))

    def reset(self) -> None:
        """Zero the last action; ``hold: current`` re-latches on the next step."""
        self.last_action[:] = 0.0
        if not self._hold_default:
            self._hold = None

    def __call__(self, raw: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Targets (6, bus order, a new array) for the model's ``raw`` output and the measured ``position``."""
        flat = np.asarray(raw).reshape(-1)
        if flat.size != self.size:
            raise ActionSizeError(
                f"the model's output has {flat.size} values, the description's joints are {self.size} "
                f"({', '.join(self.desc.joints)}): list one joint per output in `joints`")
        a = self._raw
        np.copyto(a, flat, casting="unsafe")
        if self._clip is not None:
            np.maximum(a, self._clip[0], out=a)
            np.minimum(a, self._clip[1], out=a)
        if math.isfinite(float(a.sum())):
            self.last_action[:] = a
        if self._hold is None:
            self._hold = np.clip(np.asarray(position, dtype=float), self._lower, self._upper)
        driven = self._driven
        np.multiply(a, self._scale, out=driven)
        np.add(driven, self._constant, out=driven)
        if self._delta:
            self._measured[:] = position[self._where]
            np.add(driven, self._measured, out=driven)
        targets = self._targets
        targets[:] = self._hold
        targets[self._where] = driven
        np.maximum(targets, self._lower, out=targets)
        np.minimum(targets, self._upper, out=targets)
        return targets.copy()
