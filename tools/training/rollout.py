"""Drive a robot backend with a Policy in-process, no bus: training data and evaluation.

The loop is the lockstep loop of the nodes without the sockets (read state,
act, check the command with roarm.safety as a robot node does, apply, step),
so what a policy does here is what it does through the bus against the same
backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policy_node.policy.base import Observation, Policy
from roarm.safety import BadCommand, check_command
from schemas import messages_pb2
from schemas.services_pb2 import Randomization

# What a rollout asks of a backend (sim_node.backend.SimBackend satisfies it).
Backend = Any


def cartesian_goal_message(xyz: np.ndarray, goal_id: str = "reach") -> messages_pb2.Goal:
    """A task/goal for a TCP position, gripper left as it is (NaN)."""
    goal = messages_pb2.Goal(id=goal_id, tolerance=0.015)
    goal.tcp.x, goal.tcp.y, goal.tcp.z = (float(v) for v in xyz)
    goal.tcp.gripper = float("nan")
    return goal


@dataclass
class Rollout:
    """What happened: observations seen, targets sent, final TCP error (m)."""

    observations: list[Observation] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    final_error: float = float("nan")


def step_as_robot(backend: Backend, target: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Apply ``target`` as the robot node would (clamped to limits and speed; a refused one keeps
    ``previous``), advance one step, and return the target now held."""
    try:
        previous = check_command((), target, previous, backend.dt).target
    except BadCommand:
        pass  # the robot node would reject it too and keep the previous target
    backend.apply_command(previous)
    backend.step()
    return previous


def rollout(
    backend: Backend,
    policy: Policy,
    goal_xyz: np.ndarray,
    start: np.ndarray,
    steps: int,
    seed: int = 0,
    label: Callable[[Observation], np.ndarray] | None = None,
    keep: bool = False,
    randomization: Randomization | None = None,
) -> Rollout:
    """Reset the backend at ``start`` and run ``policy`` toward ``goal_xyz`` for ``steps``.

    With ``label`` each visited observation is also given to the expert and
    the expert's target recorded instead of the policy's (DAgger: the
    learner chooses where to go, the expert says what it should have done).
    """
    goal = cartesian_goal_message(goal_xyz)
    backend.reset(start, seed=seed, randomization=randomization)
    policy.reset()
    result = Rollout()
    previous = np.asarray(start, dtype=float).copy()
    for k in range(steps):
        state = backend.read_state()
        obs = Observation(k, state.position.copy(), state.velocity.copy(), state.tcp.copy(), goal)
        target = np.asarray(policy.act(obs), dtype=float)
        if keep:
            result.observations.append(obs)
            result.targets.append(label(obs) if label is not None else target)
        previous = step_as_robot(backend, target, previous)
    result.final_error = float(np.linalg.norm(backend.read_state().tcp - goal_xyz))
    return result
