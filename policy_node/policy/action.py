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
output with any NaN or infinity gives NaN targets for every driven joint
(the policy node's watchdog turns them into a hold; an infinity must not
become a target at the joint limit) and does not become the last action, so
one bad step cannot poison every later observation.
"""

from __future__ import annotations

import math

import numpy as np

from bus.errors import HilError
from policy_node.policy.description import PolicyDescription
from roarm.joints import LOWER, UPPER


class ActionSizeError(HilError, ValueError):
    """The model returned a different number of values than the description's joints."""


class ActionMapper:
    """Maps one raw output per step; ``reset()`` at every episode start.

    Six joints are too few for numpy to pay off: each numpy call costs about
    a microsecond, a float operation in Python a few tens of nanoseconds, so
    the mapping runs on Python floats (a third of the time of the same steps
    in numpy).
    """

    def __init__(self, desc: PolicyDescription, lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> None:
        self.desc = desc
        n = desc.action_size
        self.size = n
        self.last_action = np.zeros(n)
        default = [float(v) for v in desc.default_pose]
        offset = [float(v) for v in desc.action.offset]
        self._index = tuple(desc.joint_index)
        self._scale = tuple(float(v) for v in desc.action.scale)
        self._constant = tuple(default[j] + o for j, o in zip(self._index, offset, strict=True)) \
            if desc.action.mode == "offset" else tuple(offset)
        self._delta = desc.action.mode == "delta"
        self._clip = desc.action.clip
        self._lower = [float(v) for v in (LOWER if lower is None else lower)]
        self._upper = [float(v) for v in (UPPER if upper is None else upper)]
        self._hold_default = desc.action.hold == "default"
        self._hold: list[float] | None = self._clamped(default) if self._hold_default else None

    def _clamped(self, values: list[float]) -> list[float]:
        """Clamp to the limits; NaN stays NaN (every comparison with it is false)."""
        return [lo if v < lo else hi if v > hi else v for v, lo, hi in zip(values, self._lower, self._upper, strict=True)]

    def reset(self) -> None:
        """Zero the last action; ``hold: current`` re-latches on the next step."""
        self.last_action[:] = 0.0
        if not self._hold_default:
            self._hold = None

    def __call__(self, raw: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Targets (6, bus order, a new array) for the model's ``raw`` output and the measured ``position``."""
        values = np.asarray(raw).ravel().tolist()
        if len(values) != self.size:
            raise ActionSizeError(
                f"the model's output has {len(values)} values, the description's joints are {self.size} "
                f"({', '.join(self.desc.joints)}): list one joint per output in `joints`")
        if self._clip is not None:
            low, high = self._clip
            values = [low if v < low else high if v > high else v for v in values]
        if math.isfinite(sum(values)):  # NaN or inf anywhere makes the sum non-finite
            self.last_action[:] = values
        else:
            # An infinite output must not become a target at the joint limit: NaN makes the node hold.
            values = [math.nan] * self.size
        if self._hold is None:
            self._hold = self._clamped([float(v) for v in position])
        targets = list(self._hold)
        if self._delta:
            for v, s, c, j in zip(values, self._scale, self._constant, self._index, strict=True):
                targets[j] = float(position[j]) + v * s + c
        else:
            for v, s, c, j in zip(values, self._scale, self._constant, self._index, strict=True):
                targets[j] = v * s + c
        return np.array(self._clamped(targets))
