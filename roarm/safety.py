"""Turning a received JointCommand into targets that are safe to apply.

Both robot nodes (sim and hardware) use this, so a command is judged the same
way whatever it drives: NaN/inf and malformed commands are rejected whole
(never partly applied), targets are clamped to the joint limits, and the step
from the previous target is limited to the maximum joint speed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bus.errors import HilError
from roarm.joints import ROARM_M3, JointSpec


class BadCommand(HilError, ValueError):
    """A command that must not be applied; ``reason`` is a counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Checked:
    target: np.ndarray
    clamped_limits: bool
    clamped_speed: bool


def order_targets(names: Sequence[str], position: Sequence[float], spec: JointSpec = ROARM_M3) -> np.ndarray:
    """Targets in the spec's joint order; raises BadCommand when they cannot be.

    An empty ``names`` means the canonical order. A partial name list is
    refused: a missing joint has no safe implicit value.
    """
    return np.array(order_floats(names, position, spec), dtype=float)


def order_floats(names: Sequence[str], position: Sequence[float], spec: JointSpec = ROARM_M3) -> list[float]:
    """``order_targets`` as a list of Python floats: the same checks, errors and values.

    A robot node judges every command it receives; on six values plain
    floats cost a fraction of what numpy's per-call overhead does. Input
    that is not already a flat sequence of floats (ints, arrays of another
    dtype, nested lists) is turned into floats by numpy first, so what is
    accepted and refused is the same whatever the input's type.
    """
    n = len(spec.names)
    values = _flat_floats(position)
    if values is None:
        array = np.asarray(position, dtype=float)
        if array.ndim != 1:  # nested input is not one value per joint, whatever its size
            raise BadCommand("joint_count", f"expected {n} positions, got an array of shape {array.shape}")
        values = array.tolist()
    if not names:
        if len(values) != n:
            raise BadCommand("joint_count", f"expected {n} positions, got {len(values)}")
        ordered = values
    else:
        if len(names) != len(values):
            raise BadCommand("joint_count", f"{len(names)} names but {len(values)} positions")
        unknown = [name for name in names if name not in spec.names]
        if unknown:
            raise BadCommand("unknown_joint", f"unknown joint(s) {unknown}; known: {list(spec.names)}")
        if len(set(names)) != n:
            raise BadCommand("joint_count", f"command names {len(set(names))} of the {n} joints; all are required")
        index = {name: i for i, name in enumerate(names)}
        ordered = [values[index[name]] for name in spec.names]
    if not all(map(math.isfinite, ordered)):
        raise BadCommand("non_finite", f"NaN or inf in targets {ordered}")
    return ordered


def _flat_floats(position: Sequence[float]) -> list[float] | None:
    """The values as a list when they already are floats (the bus's repeated double, a float64 array)."""
    if isinstance(position, np.ndarray):
        return position.tolist() if position.ndim == 1 and position.dtype == np.float64 else None
    values = list(position)
    return values if all(type(v) is float for v in values) else None


def check_command(
    names: Sequence[str],
    position: Sequence[float],
    previous: np.ndarray,
    dt: float,
    spec: JointSpec = ROARM_M3,
    max_velocity: np.ndarray | None = None,
) -> Checked:
    """Order, validate and clamp one command relative to the previous target.

    ``dt`` is the time since the previous target took effect; the step is
    limited to ``max_velocity * dt`` per joint.

    Plain floats, one joint at a time, with the operations numpy's ``clip``
    does (``min(max(x, lo), hi)``, the bound winning a tie) in the same
    order, so the target is bit for bit what the numpy form gave
    (tests/test_safety_floats.py checks that against numpy).
    """
    target = order_floats(names, position, spec)
    n = len(target)
    vmax = _per_joint(spec.max_velocity if max_velocity is None else max_velocity, n)
    prev = _per_joint(previous, n)
    scale = max(dt, 0.0)
    stepped = []
    clamped_limits = clamped_speed = False
    for x, lo, hi, v, p in zip(target, spec.lower, spec.upper, vmax, prev, strict=True):
        limited = x if x > lo else lo
        limited = limited if limited < hi else hi
        step = v * scale
        lo, hi = p - step, p + step
        s = limited if limited > lo else lo
        s = s if s < hi else hi
        clamped_limits = clamped_limits or limited != x
        clamped_speed = clamped_speed or s != limited
        stepped.append(s)
    return Checked(np.array(stepped), clamped_limits, clamped_speed)


def _per_joint(values: float | Sequence[float] | np.ndarray, n: int) -> list[float]:
    """``n`` floats from one value per joint, or one for all (numpy's broadcasting, which the numpy form relied on)."""
    if isinstance(values, np.ndarray):
        if values.shape == (n,) and values.dtype == np.float64:
            return values.tolist()
    elif isinstance(values, (tuple, list)) and len(values) == n and all(type(v) is float for v in values):
        return list(values)
    return np.broadcast_to(np.asarray(values, dtype=float), (n,)).tolist()
