"""Turning a received JointCommand into targets that are safe to apply.

Both robot nodes (sim and hardware) use this, so a command is judged the same
way whatever it drives: NaN/inf and malformed commands are rejected whole
(never partly applied), targets are clamped to the joint limits, and the step
from the previous target is limited to the maximum joint speed.
"""

from __future__ import annotations

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
    values = np.asarray(position, dtype=float)
    n = len(spec.names)
    if not names:
        if values.shape != (n,):
            raise BadCommand("joint_count", f"expected {n} positions, got {values.size}")
        ordered = values
    else:
        if len(names) != values.size:
            raise BadCommand("joint_count", f"{len(names)} names but {values.size} positions")
        unknown = [name for name in names if name not in spec.names]
        if unknown:
            raise BadCommand("unknown_joint", f"unknown joint(s) {unknown}; known: {list(spec.names)}")
        if len(set(names)) != n:
            raise BadCommand("joint_count", f"command names {len(set(names))} of the {n} joints; all are required")
        index = {name: i for i, name in enumerate(names)}
        ordered = values[[index[name] for name in spec.names]]
    if not np.all(np.isfinite(ordered)):
        raise BadCommand("non_finite", f"NaN or inf in targets {ordered.tolist()}")
    return ordered


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
    """
    target = order_targets(names, position, spec)
    limited = spec.clamp(target)
    clamped_limits = not np.array_equal(limited, target)
    vmax = np.asarray(spec.max_velocity if max_velocity is None else max_velocity, dtype=float)
    step = vmax * max(dt, 0.0)
    stepped = np.clip(limited, previous - step, previous + step)
    clamped_speed = not np.array_equal(stepped, limited)
    return Checked(stepped, clamped_limits, clamped_speed)
