"""Joint names, order, limits and named poses of the RoArm-M3 on the bus.

Radians in URDF convention (the firmware's gripper value is pi - q; the
hw_node converts). Limits come from Waveshare's URDF; the speed limit from the
ST3215 servo (about 45 rpm at 12 V).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NAMES: tuple[str, ...] = ("base", "shoulder", "elbow", "wrist", "roll", "gripper")
# The same joints by their URDF names (Isaac Lab, MoveIt and ROS policies use these).
URDF_NAMES: tuple[str, ...] = (
    "base_link_to_link1",
    "link1_to_link2",
    "link2_to_link3",
    "link3_to_link4",
    "link4_to_link5",
    "link5_to_gripper_link",
)
LOWER = np.array([-math.pi, -math.pi / 2, -1.0, -math.pi / 2, -math.pi, 0.0])
UPPER = np.array([math.pi, math.pi / 2, 2.95, math.pi / 2, math.pi, 1.5])
MAX_VELOCITY = np.full(6, 4.7)  # rad/s, ST3215 no-load speed at 12 V
MAX_TORQUE = 2.9  # N*m, ST3215 stall torque

POSES: dict[str, np.ndarray] = {
    "home": np.array([0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0]),
    "ready": np.array([0.0, 0.0, 2.618, -1.0472, 0.0, 0.0]),
    "zero": np.zeros(6),
}


@dataclass(frozen=True)
class JointSpec:
    """Everything a node needs to check and clamp commands for one arm."""

    names: tuple[str, ...] = NAMES
    lower: tuple[float, ...] = tuple(LOWER.tolist())
    upper: tuple[float, ...] = tuple(UPPER.tolist())
    max_velocity: tuple[float, ...] = tuple(MAX_VELOCITY.tolist())

    def clamp(self, position: np.ndarray) -> np.ndarray:
        return np.clip(position, self.lower, self.upper)

    def within(self, position: np.ndarray, margin: float = 0.0) -> bool:
        return bool(np.all(position >= np.asarray(self.lower) - margin) and np.all(position <= np.asarray(self.upper) + margin))


ROARM_M3 = JointSpec()


def pose(name: str) -> np.ndarray:
    """A copy of a named pose, with a clear error naming the known ones."""
    try:
        return POSES[name].copy()
    except KeyError:
        raise ValueError(f"unknown pose {name!r}; known: {', '.join(POSES)}") from None
