"""Goals of a scenario, one after another, judged on the robot's own clock.

A goal starts when the previous one ends (the first at the reset) and is
judged on ``JointState.sim_time``, so a lockstep run that goes 50x faster
than real time judges exactly as a real-time one would. A Cartesian goal is
judged by ``JointState.tcp`` (forward kinematics of the measured joints, the
same on every target), or for a goal of another body (``body:
gripper_link``) by forward kinematics of that body from the measured joints,
computed here the same way for every target; a joint goal by the largest
error of its joints. A goal's orientation (``quat``) is passed to the policy,
not judged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import Message

from bus.topics import GOAL
from roarm.joints import NAMES
from roarm.kinematics import body_position
from schemas import messages_pb2
from scenarios.schema import GoalSpec

# Goals are re-sent this often: a subscriber that joined late (ZMQ's slow
# joiner) still gets the active goal, and the policy acts on the newest.
GOAL_REPEAT_S = 0.25


@dataclass
class GoalResult:
    id: str
    kind: str
    tolerance: float  # m or rad
    timeout_s: float
    started_sim: float = math.nan
    reached: bool = False
    time_s: float = math.nan  # sim seconds from start to reached
    error: float = math.nan  # when judged reached (after hold_s), or the best seen if never reached
    best_error: float = math.inf
    note: str = ""

    @property
    def unit(self) -> str:
        return "mm" if self.kind == "tcp" else "rad"

    def shown(self, value: float) -> float:
        """``value`` in the unit people read: mm for tcp, rad for joints."""
        return value * 1000 if self.kind == "tcp" else value


def goal_error(goal: GoalSpec, state: messages_pb2.JointState, position: np.ndarray) -> float | None:
    """Distance to the goal (m or rad); None when the state cannot say."""
    if goal.kind == "tcp":
        if goal.body != "tcp":
            return math.dist(body_position(position, goal.body), goal.target)
        if len(state.tcp) != 3:
            return None
        return math.dist(state.tcp, goal.target)
    index = list(goal.joints_judged)
    return float(np.max(np.abs(position[index] - np.asarray(goal.target)[index])))


def goal_message(goal: GoalSpec, seq: int) -> messages_pb2.Goal:
    message = messages_pb2.Goal(stamp_ns=time.monotonic_ns(), seq=seq, id=goal.id, tolerance=goal.tolerance,
                                timeout_s=goal.timeout_s)
    if goal.visual is not None:  # where the object is stays the runner's secret
        message.visual.CopyFrom(messages_pb2.VisualTarget(colour=goal.visual, body="tcp"))
    elif goal.kind == "tcp":
        x, y, z = goal.target
        gripper = math.nan if goal.gripper is None else goal.gripper
        message.tcp.CopyFrom(messages_pb2.CartesianTarget(x=x, y=y, z=z, gripper=gripper, body=goal.body,
                                                          quat=list(goal.quat or ())))
    else:
        judged = list(goal.joints_judged)
        if len(judged) == len(NAMES):
            message.joints.CopyFrom(messages_pb2.JointTarget(names=[], position=list(goal.target)))
        else:  # only the named joints: the policy keeps the others where they are
            message.joints.CopyFrom(messages_pb2.JointTarget(names=[NAMES[i] for i in judged],
                                                             position=[goal.target[i] for i in judged]))
    return message


class GoalPublisher:
    """The active goal on task/goal, sent now and re-sent every ``repeat_s``
    until another goal (or None) replaces it: what ``hil run`` and ``hil goal
    send`` both do, so a policy that started late still gets the goal."""

    def __init__(self, publish: Callable[[str, Message], None], repeat_s: float = GOAL_REPEAT_S) -> None:
        self._publish = publish
        self.repeat_s = repeat_s
        self.goal: GoalSpec | None = None
        self.seq = 0
        self.sent = 0
        self._next = math.inf

    def send(self, goal: GoalSpec | None, seq: int) -> None:
        """Publish ``goal`` now and keep re-sending it; None stops re-sending."""
        self.goal, self.seq = goal, seq
        self._next = math.inf
        self._send_now()

    def resend_if_due(self, now: float | None = None) -> None:
        if self.goal is not None and (time.monotonic() if now is None else now) >= self._next:
            self._send_now()

    def _send_now(self) -> None:
        if self.goal is None:
            return
        self._publish(GOAL, goal_message(self.goal, self.seq))
        self.sent += 1
        self._next = time.monotonic() + self.repeat_s


class GoalSequence:
    """Which goal is active, and the verdict of each finished one."""

    def __init__(self, goals: tuple[GoalSpec, ...]) -> None:
        self.goals = goals
        self.index = 0
        self.results = [GoalResult(g.id, g.kind, g.tolerance, g.timeout_s) for g in goals]
        self._inside_since: float | None = None

    @property
    def current(self) -> GoalSpec | None:
        return self.goals[self.index] if self.index < len(self.goals) else None

    @property
    def done(self) -> bool:
        return self.index >= len(self.goals)

    def start(self, sim_time: float) -> None:
        if not self.done:
            self.results[self.index].started_sim = sim_time
            self._inside_since = None

    def observe(self, state: messages_pb2.JointState, position: np.ndarray) -> bool:
        """Judge one state; True when the active goal just finished (either way)."""
        goal = self.current
        if goal is None:
            return False
        result = self.results[self.index]
        if math.isnan(result.started_sim):
            result.started_sim = state.sim_time
        elapsed = state.sim_time - result.started_sim
        error = goal_error(goal, state, position)
        if error is None:
            result.note = "the robot publishes no tcp position; a Cartesian goal cannot be judged"
        else:
            result.best_error = min(result.best_error, error)
            if error <= goal.tolerance:
                if self._inside_since is None:
                    self._inside_since = state.sim_time
                if state.sim_time - self._inside_since >= goal.hold_s and self._inside_since - result.started_sim <= goal.timeout_s:
                    result.reached = True
                    result.time_s = self._inside_since - result.started_sim
                    result.error = error
                    return self._next(state.sim_time)
            else:
                self._inside_since = None
        if elapsed > goal.timeout_s + goal.hold_s:
            result.error = result.best_error
            return self._next(state.sim_time)
        return False

    def _next(self, sim_time: float) -> bool:
        self.index += 1
        self.start(sim_time)
        return True

    def abandon(self, why: str) -> None:
        """Mark the remaining goals as not reached (the run ended early)."""
        for result in self.results[self.index:]:
            result.note = result.note or why
            result.error = result.best_error
        self.index = len(self.goals)
