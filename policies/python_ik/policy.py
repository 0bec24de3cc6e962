"""A policy written in Python, brought to the harness as ``module:factory``.

    hil run reach --target mock --policy policies.python_ik.policy:make_policy
    hil node policy --policy policies/python_ik/policy.py:make_policy

It stands for any Python policy (a PyTorch module would compute ``act`` with
``torch.no_grad()`` in the same place): ``make_policy()`` returns an object
with ``reset()`` and ``act(obs)``; ``obs`` is a
``policy_node.policy.python.Observation`` and ``act`` returns six absolute
joint targets in bus order.

This one plans with inverse kinematics: for each new Cartesian goal it
solves for the joints that put the TCP there (roarm.kinematics.solve_ik,
from where the arm is), then moves toward that solution at a bounded joint
speed. A joint goal is followed the same way; no goal holds the arm where it
was at the reset. Deterministic: the same observations give the same targets.
"""

from __future__ import annotations

import numpy as np

from policy_node.policy.python import Observation
from roarm.joints import LOWER, UPPER
from roarm.kinematics import solve_ik

# Joint speed of the planned motion (rad/s): under the real arm's default speed limit (2 rad/s).
SPEED = 1.0


class IkPolicy:
    """Solve IK once per goal, then step toward the solution at ``speed`` rad/s."""

    def __init__(self, speed: float = SPEED) -> None:
        self.speed = speed
        self.reset()

    def reset(self) -> None:
        self._target: np.ndarray | None = None  # the last commanded joints
        self._plan: np.ndarray | None = None    # where the current goal's solution is
        self._goal_key: tuple | None = None

    def act(self, obs: Observation) -> np.ndarray:
        if self._target is None:
            self._target = np.clip(obs.positions, LOWER, UPPER)
        goal = obs.goal
        if goal is not None:
            key = (goal.id, goal.kind, tuple(goal.position if goal.position is not None else goal.joints))
            if key != self._goal_key:
                self._goal_key = key
                self._plan = self._solve(obs)
        if self._plan is not None:
            step = self.speed * obs.period
            self._target = self._target + np.clip(self._plan - self._target, -step, step)
        return self._target.copy()

    def _solve(self, obs: Observation) -> np.ndarray | None:
        goal = obs.goal
        assert goal is not None
        if goal.kind == "joints" and goal.joints is not None:
            return np.clip(np.where(np.isnan(goal.joints), self._target, goal.joints), LOWER, UPPER)
        if goal.kind != "tcp" or goal.position is None or goal.body != "tcp":
            return None  # this example reaches the TCP only: hold for other bodies
        solution, _residual = solve_ik(goal.position, np.clip(obs.positions, LOWER, UPPER))
        solution[4:] = self._target[4:]  # roll and gripper do not move the TCP
        if goal.gripper is not None:
            solution[5] = goal.gripper
        return np.clip(solution, LOWER, UPPER)


def make_policy() -> IkPolicy:
    """The factory ``--policy policies.python_ik.policy:make_policy`` calls."""
    return IkPolicy()
