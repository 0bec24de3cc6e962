"""``scripted:see_reach``: find the object a visual goal names in the camera image, then reach it.

The goal says only "the red object" (``roarm.v1.VisualTarget``); where it is
comes from the ``front`` camera:

1. segmentation: the pixels where the goal's colour channel is bright
   (> ``MIN_VALUE``) and dominates the other two by ``RATIO``;
2. back-projection: the blob's centroid (u, v) becomes a ray from the
   camera's centre (its pose from the robot's description of its cameras,
   ``CameraFrame.spec``; intrinsics from its ``foxglove.CameraCalibration``,
   else from the same description) and the ray meets the horizontal plane
   through an object's centre on the table (z = ``OBJECT_CENTRE_Z``: the
   scene's 30 mm cubes lie on the table top, z = 0). The silhouette of a
   cube is symmetric about its centre's image, so the centroid's ray passes
   close to the centre whatever the viewing angle;
3. the estimate is taken once per goal and episode, from the first frame
   that shows at least ``MIN_PIXELS`` of the colour (the arm, which later
   covers the object, is still away), then the TCP is brought there by one
   damped least-squares IK step per period, as ``scripted:ik`` does (roll
   and gripper as at ``home``: the output depends on the measured joints
   and the estimate only).

Everything is a function of the frames and states in order, so a run is
deterministic for a seed and ``hil bag check-policy`` replays it exactly
from a bag recorded with ``--raw-images``. Until the object is seen the arm
holds where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bus.errors import HilError
from policy_node.policy.base import CameraFrame, Observation
from policy_node.policy.compat import CameraNeed
from policy_node.policy.scripted import DEFAULT_DT, IkGains, _Scripted
from roarm.joints import ROARM_M3, pose
from roarm.kinematics import ik_step

CAMERA = "front"
HOME = pose("home")
# Frames may be this old (the robot's clock): a camera every 5 steps at 20 ms is 80 ms at most.
MAX_AGE_S = 0.1
MIN_VALUE = 60
RATIO = 1.6
MIN_PIXELS = 12
OBJECT_CENTRE_Z = 0.015  # m: a 30 mm cube on the table top (z = 0)
CHANNELS = {"red": 0, "green": 1, "blue": 2}


class SeeReachError(HilError, ValueError):
    """The camera cannot be used to locate anything (no pose, a ray that never meets the table)."""


def segment(rgb: np.ndarray, colour: str) -> np.ndarray:
    """Boolean mask of the pixels of ``colour`` (red, green or blue)."""
    c = CHANNELS[colour]
    pixels = rgb.astype(np.int16)
    others = np.max(np.delete(pixels, c, axis=2), axis=2)
    value = pixels[..., c]
    return (value > MIN_VALUE) & (value * 10 > others * int(RATIO * 10))


def locate(frame: CameraFrame, colour: str, q: np.ndarray, plane_z: float = OBJECT_CENTRE_Z) -> np.ndarray | None:
    """World position where the centroid's ray meets z = ``plane_z``; None when too few pixels show the colour."""
    mask = segment(frame.rgb, colour)
    rows, cols = np.nonzero(mask)
    if rows.size < MIN_PIXELS:
        return None
    spec = frame.spec
    if spec is None:
        raise SeeReachError(f"camera {frame.camera!r}: the robot does not describe its pose (info.extra "
                            "'cameras'): a simulator with robot.cameras does")
    if frame.intrinsics is not None:
        fx, fy, cx, cy = (frame.intrinsics[0, 0], frame.intrinsics[1, 1], frame.intrinsics[0, 2],
                          frame.intrinsics[1, 2])
    else:
        fx, fy, cx, cy = spec.intrinsics()
        sx, sy = frame.width / spec.width, frame.height / spec.height
        fx, cx, fy, cy = fx * sx, cx * sx, fy * sy, cy * sy
    u, v = cols.mean() + 0.5, rows.mean() + 0.5  # pixel centres
    pose = spec.world_pose(q)
    ray = pose[:3, :3] @ np.array([(u - cx) / fx, -(v - cy) / fy, -1.0])  # OpenGL camera: looks along -z
    origin = pose[:3, 3]
    if abs(ray[2]) < 1e-9 or (plane_z - origin[2]) / ray[2] <= 0:
        raise SeeReachError(f"camera {frame.camera!r}: the ray through pixel ({u:.1f}, {v:.1f}) never meets the "
                            f"table (z = {plane_z} m): point the camera at it")
    return origin + ray * ((plane_z - origin[2]) / ray[2])


class SeeReach(_Scripted):
    """The policy of the module docstring; goal kinds: ``visual``."""

    def __init__(self, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None,
                 gains: IkGains = IkGains(), camera: str = CAMERA) -> None:
        super().__init__("see_reach", dt, ("visual",), max_velocity)
        self.camera = camera
        self.gains = gains
        self.requirements = replace(self.requirements, cameras=(CameraNeed(camera, MAX_AGE_S),))
        self.estimate: np.ndarray | None = None
        self._goal_key: tuple[str, int] | None = None

    def reset(self) -> None:
        super().reset()
        self.estimate = None
        self._goal_key = None

    def act(self, obs: Observation) -> np.ndarray:
        goal = obs.goal
        if goal is None or goal.WhichOneof("target") != "visual" or goal.visual.colour not in CHANNELS:
            return self.held(obs)
        key = (goal.id, int(goal.seq))
        if key != self._goal_key:
            self._goal_key, self.estimate = key, None
        frame = obs.images.get(self.camera)
        if self.estimate is None and frame is not None:
            self.estimate = locate(frame, goal.visual.colour, obs.position)
        if self.estimate is None:
            return self.held(obs)
        position = ROARM_M3.clamp(obs.position)
        target = ik_step(position, self.estimate, damping=self.gains.damping, max_step=float(np.min(self.max_step)))
        target[4:] = HOME[4:]  # roll and gripper do not move the TCP: kept as at home
        self._held = ROARM_M3.clamp(target)
        return self._held.copy()
