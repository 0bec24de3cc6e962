"""The Policy API: what a policy sees and what it returns.

This is a contract other parts of the harness rely on (the policy node, the
bag's ``check-policy``, the scenario runner), so the names below are stable:

- ``Observation``: ``seq`` (the JointState seq it was built from),
  ``position`` and ``velocity`` (float arrays, bus joint order), ``tcp``
  (measured tool centre point in metres, or None when the robot did not send
  one), ``goal`` (the newest ``roarm.v1.Goal`` or None).
- ``Policy`` (a Protocol): ``reset()`` forgets per-episode state;
  ``act(obs)`` returns absolute joint position targets, a 6-vector in bus
  order; attributes ``name``, ``model_hash`` (sha256 of the model file, ""
  for scripted policies) and ``spec`` (a ``policy_node.policy.spec.PolicySpec``).
- ``policy_node.policy.load.load_policy(source)``: a path to an ``.onnx``
  file, or ``scripted:hold``, ``scripted:waypoints``, ``scripted:ik``.

Every policy is deterministic: the same observations in the same order give
the same actions, which is what lets a recorded run be checked offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from policy_node.policy.spec import PolicySpec
from schemas import messages_pb2


@dataclass
class Observation:
    seq: int
    position: np.ndarray
    velocity: np.ndarray
    tcp: np.ndarray | None = None
    goal: messages_pb2.Goal | None = None

    @classmethod
    def from_state(cls, state: messages_pb2.JointState, goal: messages_pb2.Goal | None = None) -> Observation:
        """Build from a received JointState (canonical order is the robot's job)."""
        n = len(state.position)
        # fromiter with a count: the cheapest copy out of a protobuf repeated field (once per step).
        velocity = np.fromiter(state.velocity, float, n) if len(state.velocity) == n else np.zeros(n)
        tcp = np.fromiter(state.tcp, float, 3) if len(state.tcp) == 3 else None
        return cls(int(state.seq), np.fromiter(state.position, float, n), velocity, tcp, goal)


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
    spec: PolicySpec

    def reset(self) -> None:
        """Forget per-episode state (called when the robot is reset)."""

    def act(self, obs: Observation) -> np.ndarray:
        """Absolute joint position targets (6, bus order) answering ``obs``."""

