"""A bag read back as a ``scenarios.trace.Trace``: the same picture the runner
draws for ``report.html``, from a recording.

Reconstructing the runner's view from the messages alone:
- the clock is the robot's ``sim_time``, summed over episodes (a state whose
  seq or sim_time goes back is a reset);
- a goal is one goal however often it was re-sent (keyed by its id); it
  starts at the first state after it was published, and again at the
  robot's state 0 when a reset follows it (``reset: true`` goals: what came
  before was the old episode's tail);
- its reach moment is the first state within its tolerance (the bag does not
  know ``hold_s``; the runner's report does);
- a command belongs to the state of its ``obs_seq`` in the same episode; the
  latency is its stamp minus that state's stamp (first answer only), as the
  runner measures it.
Messages decode from the bag's embedded schemas, so field access is by name
and old bags work.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bus.topics import EVENT, GOAL, JOINT_COMMAND, JOINT_STATE
from scenarios.trace import CUT_SHORT, MISSED, REACHED, EventMark, GoalSpan, Trace
from tools.bag.reader import BagReader

SEVERITIES = {1: "DEBUG", 2: "INFO", 3: "WARNING", 4: "ERROR", 5: "CRITICAL"}  # roarm.v1.Severity


def _distance(goal: Any, state: Any) -> float | None:
    target = goal.WhichOneof("target")
    if target == "tcp" and len(state.tcp) == 3:
        g = goal.tcp
        return math.dist((g.x, g.y, g.z), tuple(state.tcp))
    if target == "joints":
        names = list(goal.joints.names) or list(state.names)
        index = {n: i for i, n in enumerate(state.names)}
        errors = [abs(v - state.position[index[n]])
                  for n, v in zip(names, goal.joints.position, strict=False) if n in index]
        if errors:
            return max(errors)
    return None


class _Builder:
    """One pass over the bag's messages in send order."""

    def __init__(self) -> None:
        self.trace = Trace(source="bag")
        self.goal: Any = None
        self.goal_index = -1
        self.goal_start: float | None = None
        self.first_row_of_goal = 0
        self.episode = 0
        self.base = 0.0  # run clock at this episode's start
        self.last: tuple[int, float] | None = None  # (seq, sim_time) of the newest state
        self.now = 0.0
        self.rows: dict[tuple[int, int], int] = {}  # (episode, seq) -> row
        self.stamps: dict[tuple[int, int], int] = {}
        self.commands: dict[int, tuple[list[float], bool]] = {}
        self.answered: set[tuple[int, int]] = set()
        self.latency: dict[int, float] = {}

    def on_goal(self, msg: Any) -> None:
        if self.goal is not None and msg.id == self.goal.id:
            self.goal = msg  # a re-send: the same goal
            return
        self.goal = msg
        self.goal_index = len(self.trace.goals)
        kind = "tcp" if msg.WhichOneof("target") == "tcp" else "joints"
        self.trace.goals.append(GoalSpan(self.goal_index, msg.id or f"goal{self.goal_index}", kind,
                                         float(msg.tolerance), float(msg.timeout_s)))
        self.goal_start = None
        self.first_row_of_goal = len(self.trace.t)

    def on_state(self, msg: Any) -> None:
        seq, sim_time = int(msg.seq), float(msg.sim_time)
        trace = self.trace
        if self.last is not None and (seq, sim_time) == self.last:
            return  # re-published while the policy joins
        if self.last is not None and (seq < self.last[0] or sim_time < self.last[1]):
            self.base += self.last[1]
            self.episode += 1
            trace.episodes.append(self.base)
            if self.goal_index >= 0:  # the goal restarts with the new episode
                for row in range(self.first_row_of_goal, len(trace.t)):
                    if trace.goal_index[row] == self.goal_index:
                        trace.goal_index[row], trace.goal_elapsed[row], trace.distance[row] = -1, math.nan, None
                self.goal_start = None
                self.first_row_of_goal = len(trace.t)
        elif self.last is None:
            trace.episodes.append(0.0)
        self.last = (seq, sim_time)
        if not trace.joint_names and len(msg.names):
            trace.joint_names = list(msg.names)
        run_t = self.base + sim_time
        self.now = run_t
        key = (self.episode, seq)
        self.rows[key] = len(trace.t)
        self.stamps[key] = int(msg.stamp_ns)
        trace.t.append(run_t)
        trace.position.append([float(v) for v in msg.position])
        if self.goal is not None:
            if self.goal_start is None:
                self.goal_start = run_t
                trace.goals[self.goal_index].start_t = run_t
            distance = _distance(self.goal, msg)
            trace.goal_index.append(self.goal_index)
            trace.goal_elapsed.append(run_t - self.goal_start)
            trace.distance.append(distance)
        else:
            trace.goal_index.append(-1)
            trace.goal_elapsed.append(math.nan)
            trace.distance.append(None)

    def on_command(self, msg: Any) -> None:
        key = (self.episode, int(msg.obs_seq))
        row = self.rows.get(key)
        if row is None:
            return
        self.commands.setdefault(row, ([float(v) for v in msg.position], bool(msg.hold)))
        if key[1] > 0 and key not in self.answered:
            self.answered.add(key)
            self.latency[row] = (int(msg.stamp_ns) - self.stamps[key]) / 1e6

    def on_event(self, msg: Any) -> None:
        self.trace.events.append(EventMark(self.now, msg.node, SEVERITIES.get(int(msg.severity), "INFO"), msg.code,
                                           msg.text))

    def finish(self) -> Trace:
        trace = self.trace
        trace.command = [self.commands[r][0] if r in self.commands else None for r in range(len(trace.t))]
        trace.hold = [bool(r in self.commands and self.commands[r][1]) for r in range(len(trace.t))]
        trace.latency_ms = [self.latency.get(r) for r in range(len(trace.t))]
        for goal in trace.goals:
            rows = [r for r, g in enumerate(trace.goal_index) if g == goal.index]
            within = [r for r in rows if trace.distance[r] is not None and trace.distance[r] <= goal.tolerance]
            if within:
                goal.status, goal.reached_after_s = REACHED, trace.goal_elapsed[within[0]]
            elif rows and goal.timeout_s and trace.goal_elapsed[rows[-1]] >= goal.timeout_s:
                goal.status = MISSED
            elif rows:
                goal.status, goal.note = CUT_SHORT, "the bag ends before its timeout"
        return trace


def load_trace(path: Path) -> Trace:
    """The bag as a Trace (robot clock, goals deduplicated by id, commands matched)."""
    reader = BagReader(path)
    builder = _Builder()
    picked = [m for m in reader.messages() if m.topic in (JOINT_STATE, JOINT_COMMAND, GOAL, EVENT)]
    picked.sort(key=lambda m: m.publish_time)  # stable: ties keep file order
    handlers = {GOAL: builder.on_goal, JOINT_STATE: builder.on_state, JOINT_COMMAND: builder.on_command,
                EVENT: builder.on_event}
    for message in picked:
        handlers[message.topic](reader.decode(message))
    return builder.finish()
