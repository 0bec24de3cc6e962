"""Scripted policies behind the same interface as a model: hold, waypoints, ik.

They need no training and behave the same on every robot, which makes them
the reference for the harness itself (a failing scenario with ``scripted:ik``
is a harness or robot problem, not a policy one) and the expert the reach
model learns from. All are deterministic functions of what they observed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bus.errors import HilError
from policy_node.policy.base import Observation, cartesian_goal, joint_goal
from policy_node.policy.compat import Requirements
from roarm.joints import MAX_VELOCITY, ROARM_M3, pose
from roarm.kinematics import ik_step

# Scripted policies move at this fraction of the servo's top speed: fast
# enough to be useful, with headroom so the robot's own speed clamp never
# has to cut in.
SPEED_FRACTION = 0.5
# Control period the scripted policies assume when nobody tells them better.
DEFAULT_DT = 0.02


def step_toward(current: np.ndarray, target: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """``current`` moved toward ``target`` by at most ``max_step`` per joint."""
    return current + np.clip(target - current, -max_step, max_step)


class _Scripted:
    """Common part: spec, limits and the position to hold when idle."""

    def __init__(self, name: str, dt: float, goal_kinds: tuple[str, ...],
                 max_velocity: Sequence[float] | None = None) -> None:
        if not (math.isfinite(dt) and dt > 0):
            raise ValueError(f"scripted:{name}: control period dt must be > 0 s, got {dt!r}")
        speed = MAX_VELOCITY if max_velocity is None or len(max_velocity) == 0 else np.asarray(max_velocity, float)
        if speed.shape != MAX_VELOCITY.shape or not np.all(np.isfinite(speed)) or np.any(speed <= 0):
            raise ValueError(f"scripted:{name}: max_velocity must be {MAX_VELOCITY.size} speeds > 0 rad/s, "
                             f"got {list(speed)}")
        self.name = f"scripted:{name}"
        self.model_hash = ""
        self.dt = dt
        # Any period, all six joints at the RoArm-M3's limits (they clamp to them).
        self.requirements = Requirements(ROARM_M3.names, ROARM_M3.lower, ROARM_M3.upper, None, frozenset(goal_kinds))
        # A fraction of the robot's own speed limit (its info.max_velocity: the real arm's node
        # clamps below the servo's top speed), so the robot's clamp never distorts the path.
        self.max_step = speed * SPEED_FRACTION * dt
        self._held: np.ndarray | None = None

    def reset(self) -> None:
        self._held = None

    def held(self, obs: Observation) -> np.ndarray:
        """The first measured position since the last reset, clamped to the limits."""
        if self._held is None:
            self._held = ROARM_M3.clamp(obs.position)
        return self._held.copy()


class Hold(_Scripted):
    """Stay where the arm was at the first observation (the watchdog's friend)."""

    def __init__(self, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None) -> None:
        super().__init__("hold", dt, (), max_velocity)

    def act(self, obs: Observation) -> np.ndarray:
        return self.held(obs)


class Waypoints(_Scripted):
    """Joint-space trajectory through named poses or joint vectors, speed limited.

    A joint goal on task/goal replaces the list with that one waypoint
    (joints it leaves out keep their current target); without one it cycles
    through ``waypoints``. The commanded target moves by at most
    SPEED_FRACTION of the servo speed per period, so the robot's clamp never
    distorts the path.
    """

    def __init__(
        self, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None,
        waypoints: Sequence[np.ndarray] | None = None, tolerance: float = 0.02,
    ) -> None:
        super().__init__("waypoints", dt, ("joints",), max_velocity)
        self.waypoints = [np.asarray(w, dtype=float) for w in (waypoints or (pose("ready"), pose("home")))]
        self.tolerance = tolerance
        self._target: np.ndarray | None = None
        self._index = 0

    def reset(self) -> None:
        super().reset()
        self._target = None
        self._index = 0

    def act(self, obs: Observation) -> np.ndarray:
        if self._target is None:
            self._target = ROARM_M3.clamp(obs.position)
        goal = joint_goal(obs.goal, ROARM_M3.names)
        if goal is not None:
            waypoint = np.where(np.isnan(goal), self._target, goal)
        else:
            waypoint = self.waypoints[self._index % len(self.waypoints)]
            if np.max(np.abs(self._target - waypoint)) <= 1e-9 and np.max(np.abs(obs.position - waypoint)) <= self.tolerance:
                self._index += 1
                waypoint = self.waypoints[self._index % len(self.waypoints)]
        self._target = step_toward(self._target, ROARM_M3.clamp(waypoint), self.max_step)
        return self._target.copy()


@dataclass(frozen=True)
class IkGains:
    """Damped least squares: damping (m) bounds steps near singular poses."""

    damping: float = 0.05


class Ik(_Scripted):
    """Reach a Cartesian TCP goal by one damped least-squares step per period.

    The step is taken from the *measured* joints, so the output is a function
    of the observation alone: the property a learned imitation needs. A joint
    goal is followed in joint space (speed limited), no goal means hold.
    """

    def __init__(self, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None,
                 gains: IkGains = IkGains()) -> None:
        super().__init__("ik", dt, ("tcp", "joints"), max_velocity)
        self.gains = gains

    def act(self, obs: Observation) -> np.ndarray:
        xyz = cartesian_goal(obs.goal)
        if xyz is not None:
            position = ROARM_M3.clamp(obs.position)
            target = ik_step(position, xyz, damping=self.gains.damping, max_step=float(np.min(self.max_step)))
            target[4:] = self.held(obs)[4:]  # roll and gripper do not move the TCP
            gripper = obs.goal.tcp.gripper if obs.goal is not None else math.nan
            if math.isfinite(gripper):
                target[5] = gripper
            self._held = ROARM_M3.clamp(target)
            return self._held.copy()
        goal = joint_goal(obs.goal, ROARM_M3.names)
        current = self.held(obs)
        if goal is None:
            return current
        self._held = step_toward(current, ROARM_M3.clamp(np.where(np.isnan(goal), current, goal)), self.max_step)
        return self._held.copy()


class UnknownScripted(HilError, ValueError):
    """A ``scripted:NAME`` that names no scripted policy (the message lists the known ones)."""


KINDS: dict[str, type[Hold | Waypoints | Ik]] = {"hold": Hold, "waypoints": Waypoints, "ik": Ik}
# The names ``scripted:NAME`` accepts (scenario files check against them too).
SCRIPTED = tuple(KINDS)


def make(name: str, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None) -> Hold | Waypoints | Ik:
    """A scripted policy by name, with a clear error listing the known ones.

    ``max_velocity`` (rad/s per joint) is the robot's speed limit from its
    ``info``; the servo's top speed when not given.
    """
    if name not in KINDS:
        raise UnknownScripted(f"unknown scripted policy {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name](dt, max_velocity)
