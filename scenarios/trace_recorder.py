"""Builds a run's ``Trace`` while it runs, from what the runner already sees.

The runner passes each judged state (with the active goal); the monitor
passes the commands, latencies and events it takes off the bus. Commands
are matched to their state by (episode, obs_seq) at the end, because a
state's command often arrives in the same batch as the state, before the
runner judged it. Memory stays bounded: past ``max_rows`` states every other
row is dropped and only every 2nd (4th, ...) state is kept from then on, so
an hour-long soak still plots, just at a coarser step.
"""

from __future__ import annotations

import math
import numpy as np

from roarm.joints import NAMES
from scenarios.goals import GoalResult, GoalSequence, goal_error
from scenarios.schema import Scenario
from scenarios.trace import CUT_SHORT, MISSED, NOT_RUN, REACHED, EventMark, GoalSpan, Thumbnail, Trace
from schemas import messages_pb2

MAX_ROWS = 20_000
MAX_EVENTS = 500
MAX_THUMBNAILS = 48


class TraceRecorder:
    def __init__(self, max_rows: int = MAX_ROWS, max_events: int = MAX_EVENTS) -> None:
        self.max_rows = max_rows
        self.max_events = max_events
        self.trace = Trace(joint_names=list(NAMES))
        self.events_dropped = 0
        self._keys: list[tuple[int, int]] = []  # (episode, seq) per row
        self._commands: dict[tuple[int, int], tuple[list[float], bool]] = {}
        self._latency: dict[tuple[int, int], float] = {}
        self._episode = 0
        self._seen = 0  # states offered since the start (for the stride)
        self._last_key: tuple[int, int] | None = None
        self._now = 0.0
        self._spans: dict[int, float] = {}  # goal index -> run clock at its start

    # -- fed by the monitor ---------------------------------------------------
    def new_episode(self) -> None:
        """The robot was reset: its seq restarts at 0."""
        self._episode += 1
        self.trace.episodes.append(self._now)

    def command(self, obs_seq: int, position: np.ndarray, hold: bool) -> None:
        key = (self._episode, obs_seq)
        if key not in self._commands:
            self._commands[key] = ([float(v) for v in position], hold)

    def latency(self, obs_seq: int, seconds: float) -> None:
        self._latency.setdefault((self._episode, obs_seq), seconds * 1e3)

    def event(self, node: str, severity: int, code: str, text: str) -> None:
        name = messages_pb2.Severity.Name(severity) if severity in messages_pb2.Severity.values() else str(severity)
        self.mark(self._now, node, code, text, name)

    def mark(self, t: float, node: str, code: str, text: str = "", severity: str = "INFO") -> None:
        """Something worth a tick on the events timeline (the runner's own actions too)."""
        if len(self.trace.events) >= self.max_events:
            self.events_dropped += 1
            return
        self.trace.events.append(EventMark(t, node, severity, code, text))

    def thumbnail(self, camera: str, t: float, mime: str, data: bytes) -> None:
        """A camera frame for the report page (kept up to MAX_THUMBNAILS, the first ones)."""
        if len(self.trace.thumbnails) < MAX_THUMBNAILS:
            self.trace.thumbnails.append(Thumbnail(camera, t, mime, data))

    # -- fed by the runner ----------------------------------------------------
    def state(self, run_t: float, state: messages_pb2.JointState, position: np.ndarray,
              goals: GoalSequence, judged: bool = True) -> None:
        """One state as the runner judges it, before the goal sequence sees it; ``judged=False``
        for the steps a lockstep episode runs past its verdict (drawn, no goal's distance)."""
        self._now = run_t
        key = (self._episode, int(state.seq))
        if key == self._last_key:
            return  # a lockstep robot re-publishing state 0 while the policy joins
        self._last_key = key
        goal = goals.current if judged else None
        index = goals.index if goal is not None else -1
        elapsed, distance = math.nan, None
        if goal is not None:
            started = goals.results[index].started_sim
            elapsed = state.sim_time - started if math.isfinite(started) else 0.0
            self._spans.setdefault(index, run_t - elapsed)
            distance = goal_error(goal, state, position)
        self._seen += 1
        if (self._seen - 1) % self.trace.stride:
            self._commands.pop(key, None)  # a thinned-out state: its command is not needed
            self._latency.pop(key, None)
            return
        trace = self.trace
        trace.t.append(run_t)
        trace.position.append([float(v) for v in position])
        trace.goal_index.append(index)
        trace.goal_elapsed.append(elapsed)
        trace.distance.append(distance)
        self._keys.append(key)
        if len(trace.t) > self.max_rows:
            self._thin()
        if len(self._commands) > 2 * len(self._keys) + 1024:
            self._prune(key)

    def _thin(self) -> None:
        trace = self.trace
        for name in ("t", "position", "goal_index", "goal_elapsed", "distance"):
            setattr(trace, name, getattr(trace, name)[::2])
        self._keys = self._keys[::2]
        trace.stride *= 2
        self._prune(self._keys[-1])

    def _prune(self, newest: tuple[int, int]) -> None:
        """Keep the commands and latencies of kept rows and of states still to come."""
        kept = set(self._keys)
        self._commands = {k: v for k, v in self._commands.items() if k in kept or k > newest}
        self._latency = {k: v for k, v in self._latency.items() if k in kept or k > newest}

    # -- the end ----------------------------------------------------------------
    def finish(self, results: list[GoalResult], scenario: Scenario | None = None) -> Trace:
        """The trace with commands matched to their states and each goal's outcome."""
        trace = self.trace
        trace.command, trace.hold, trace.latency_ms = [], [], []
        for key in self._keys:
            command = self._commands.get(key)
            trace.command.append(command[0] if command else None)
            trace.hold.append(bool(command and command[1]))
            trace.latency_ms.append(self._latency.get(key))
        trace.goals = [self._span(i, result) for i, result in enumerate(results)]
        if scenario is not None and scenario.assertions.loop_latency is not None:
            trace.latency_bound_ms = scenario.assertions.loop_latency.p99_ms
        if self.events_dropped:
            trace.events.append(EventMark(self._now, "runner", "INFO", "trace.events_dropped",
                                          f"{self.events_dropped} more event(s) not kept for the timeline"))
        return trace

    def _span(self, index: int, result: GoalResult) -> GoalSpan:
        span = GoalSpan(index, result.id, result.kind, result.tolerance, result.timeout_s,
                        start_t=self._spans.get(index, math.nan), note=result.note)
        if result.reached:
            span.status, span.reached_after_s = REACHED, result.time_s
        elif math.isnan(result.started_sim):
            span.status = NOT_RUN
        elif result.note:
            span.status = CUT_SHORT
        else:
            span.status = MISSED
        return span
