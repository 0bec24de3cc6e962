"""The Policy API: what a policy sees and what it returns.

This is a contract other parts of the harness rely on (the policy node, the
bag's ``check-policy``, the scenario runner), so the names below are stable:

- ``Observation``: ``seq`` (the JointState seq it was built from),
  ``position`` and ``velocity`` (float arrays, bus joint order), ``tcp``
  (measured tool centre point in metres, or None when the robot did not send
  one), ``goal`` (the newest ``roarm.v1.Goal`` or None) and ``target`` (that
  goal as a ``Goal`` when it is Cartesian: position, optional quaternion,
  body; else None) and ``images`` (camera name -> ``CameraFrame`` for the
  cameras the policy asked for in ``requirements.cameras``; empty otherwise).
- ``CameraFrame``: ``rgb`` ((height, width, 3) uint8, RGB, read-only),
  ``stamp_ns`` (capture time), ``step`` (the robot step it belongs to, None
  for a real camera), ``intrinsics`` (3x3 K from the camera's
  ``foxglove.CameraCalibration``, or None until one arrived).
- ``Goal``: ``position`` (3, m, world frame), ``quat`` (w, x, y, z, or None
  when the goal gives no orientation), ``body`` (``tcp`` or a URDF link).
- ``Policy`` (a Protocol): ``reset()`` forgets per-episode state;
  ``act(obs)`` returns absolute joint position targets, a 6-vector in bus
  order; attributes ``name``, ``model_hash`` (sha256 of the model file, ""
  for scripted policies) and ``requirements`` (a
  ``policy_node.policy.compat.Requirements``: joints, limits, period, goal
  kinds).
- ``policy_node.policy.load.load_policy(source)``: a model file, a policy
  folder, a ``policy.yaml``/``MODEL.onnx.yaml``, or ``scripted:hold``,
  ``scripted:waypoints``, ``scripted:ik``.

Every policy is deterministic: the same observations in the same order give
the same actions, which is what lets a recorded run be checked offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from policy_node.policy.compat import Requirements
from roarm.camera import CameraSpec
from schemas import messages_pb2


@dataclass
class Goal:
    """A Cartesian goal as a policy sees it: ``position`` (m, world frame), optional ``quat`` (w, x, y, z), the body.

    ``body`` is ``tcp`` or a URDF link (``gripper_link``); whether it is the
    body the policy was trained for is checked before a run, not per step.
    """

    position: np.ndarray
    quat: np.ndarray | None = None
    body: str = "tcp"


def goal_target(goal: messages_pb2.Goal | None) -> Goal | None:
    """The Cartesian part of a ``roarm.v1.Goal`` (None for a joint goal or none).

    Goals recorded before schema 1.1 have no ``body`` or ``quat``: they read
    as the TCP without an orientation.
    """
    if goal is None or goal.WhichOneof("target") != "tcp":
        return None
    tcp = goal.tcp
    quat = np.array(tcp.quat, dtype=float) if len(tcp.quat) == 4 else None
    return Goal(np.array([tcp.x, tcp.y, tcp.z]), quat, tcp.body or "tcp")


@dataclass(frozen=True)
class CameraFrame:
    """One camera frame as a policy sees it, whatever the wire carried (raw or JPEG/PNG).

    ``intrinsics`` is the 3x3 camera matrix K (pixels) of the frame's
    resolution, from the camera's calibration topic (None until one came);
    ``frame_id`` names the camera's frame (the camera name); ``spec`` is the
    camera as the robot describes it in ``info.extra["cameras"]`` (mount,
    pose, field of view: ``spec.world_pose(q)``), None when it does not.
    """

    camera: str
    rgb: np.ndarray
    stamp_ns: int
    step: int | None = None
    intrinsics: np.ndarray | None = None
    frame_id: str = ""
    spec: CameraSpec | None = None

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass
class Observation:
    seq: int
    position: np.ndarray
    velocity: np.ndarray
    tcp: np.ndarray | None = None
    goal: messages_pb2.Goal | None = None
    target: Goal | None = None
    images: dict[str, CameraFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target is None and self.goal is not None:
            self.target = goal_target(self.goal)

    @classmethod
    def from_state(cls, state: messages_pb2.JointState, goal: messages_pb2.Goal | None = None,
                   target: Goal | None = None, images: dict[str, CameraFrame] | None = None) -> Observation:
        """Build from a received JointState (canonical order is the robot's job).

        ``target`` is ``goal_target(goal)``, computed here unless the caller
        (the node, once per goal rather than once per step) passes it;
        ``images`` the frames paired with this state.
        """
        n = len(state.position)
        # fromiter with a count: the cheapest copy out of a protobuf repeated field (once per step).
        velocity = np.fromiter(state.velocity, float, n) if len(state.velocity) == n else np.zeros(n)
        tcp = np.fromiter(state.tcp, float, 3) if len(state.tcp) == 3 else None
        return cls(int(state.seq), np.fromiter(state.position, float, n), velocity, tcp, goal, target, images or {})


def cartesian_goal(goal: messages_pb2.Goal | None) -> np.ndarray | None:
    """The goal's TCP position (m) if it is a Cartesian goal, else None."""
    if goal is None or goal.WhichOneof("target") != "tcp":
        return None
    return np.array([goal.tcp.x, goal.tcp.y, goal.tcp.z])


def joint_goal(goal: messages_pb2.Goal | None, names: tuple[str, ...]) -> np.ndarray | None:
    """The goal's joint targets in ``names`` order if it is a joint goal, else None.

    A joint goal that names only some joints leaves the others as NaN, meaning
    "keep where you are" to the caller.
    """
    if goal is None or goal.WhichOneof("target") != "joints":
        return None
    target = np.full(len(names), np.nan)
    given = list(goal.joints.names) or list(names)
    for name, value in zip(given, goal.joints.position, strict=False):
        if name in names:
            target[names.index(name)] = value
    return target


@runtime_checkable
class Policy(Protocol):
    name: str
    model_hash: str
    requirements: Requirements

    def reset(self) -> None:
        """Forget per-episode state (called when the robot is reset)."""

    def act(self, obs: Observation) -> np.ndarray:
        """Absolute joint position targets (6, bus order) answering ``obs``."""

