"""The time series people look at, pulled out of a bag once: measured and
commanded joints, goals, TCP distance to goal, state-to-command latency.

Shared by ``plot`` (pictures) and anything else that wants the numbers.
Messages decode from the bag's embedded schemas, so field access is by name
and old bags work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE
from tools.bag.reader import BagReader


@dataclass
class Series:
    """Times are seconds since the first of these messages, by the senders' stamps
    (publish_time): exact per message, where the recorder's receive times come in
    20 ms batches."""

    state_t: list[float] = field(default_factory=list)
    state_q: list[list[float]] = field(default_factory=list)
    command_t: list[float] = field(default_factory=list)
    command_q: list[list[float]] = field(default_factory=list)
    command_hold: list[bool] = field(default_factory=list)
    # Distance to the active goal: metres for TCP goals, max |joint error| (rad) for joint goals.
    goal_t: list[float] = field(default_factory=list)
    goal_distance: list[float] = field(default_factory=list)
    goal_kind: list[str] = field(default_factory=list)
    goal_changes: list[tuple[float, str]] = field(default_factory=list)
    # Robot publishes state k -> policy publishes the command with obs_seq k (sender stamps).
    latency_t: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    joint_names: list[str] = field(default_factory=list)

    def arrays(self, name: str) -> np.ndarray:
        return np.asarray(getattr(self, name), dtype=float)


def _distance(goal: object, state: object) -> tuple[float, str] | None:
    target = goal.WhichOneof("target")  # type: ignore[attr-defined]
    if target == "tcp" and len(state.tcp) == 3:  # type: ignore[attr-defined]
        g = goal.tcp  # type: ignore[attr-defined]
        return math.dist((g.x, g.y, g.z), tuple(state.tcp)), "tcp"  # type: ignore[attr-defined]
    if target == "joints":
        names = list(goal.joints.names) or list(state.names)  # type: ignore[attr-defined]
        index = {n: i for i, n in enumerate(state.names)}  # type: ignore[attr-defined]
        errors = [abs(v - state.position[index[n]])  # type: ignore[attr-defined]
                  for n, v in zip(names, goal.joints.position, strict=False) if n in index]  # type: ignore[attr-defined]
        if errors:
            return max(errors), "joints"
    return None


def load_series(path: Path) -> Series:
    """One pass over the bag, then in send order; matches commands to states by obs_seq
    (newest episode)."""
    reader = BagReader(path)
    out = Series()
    t0: int | None = None
    goal = None
    state_sent: dict[int, int] = {}  # state seq -> publish_time (ns), newest episode wins
    picked = [m for m in reader.messages() if m.topic in (JOINT_STATE, JOINT_COMMAND, GOAL)]
    picked.sort(key=lambda m: m.publish_time)  # stable: ties keep file order
    for message in picked:
        if t0 is None:
            t0 = message.publish_time
        t = (message.publish_time - t0) / 1e9
        msg = reader.decode(message)
        if message.topic == GOAL:
            goal = msg
            out.goal_changes.append((t, msg.id))  # type: ignore[attr-defined]
        elif message.topic == JOINT_STATE:
            if not out.joint_names and len(msg.names):  # type: ignore[attr-defined]
                out.joint_names = list(msg.names)  # type: ignore[attr-defined]
            out.state_t.append(t)
            out.state_q.append(list(msg.position))  # type: ignore[attr-defined]
            state_sent[int(msg.seq)] = message.publish_time  # type: ignore[attr-defined]
            if goal is not None:
                found = _distance(goal, msg)
                if found is not None:
                    out.goal_t.append(t)
                    out.goal_distance.append(found[0])
                    out.goal_kind.append(found[1])
        else:
            out.command_t.append(t)
            out.command_q.append(list(msg.position))  # type: ignore[attr-defined]
            out.command_hold.append(bool(msg.hold))  # type: ignore[attr-defined]
            sent = state_sent.get(int(msg.obs_seq))  # type: ignore[attr-defined]
            if sent is not None and not msg.hold:  # type: ignore[attr-defined]
                out.latency_t.append(t)
                out.latency_ms.append((message.publish_time - sent) / 1e6)
    return out
