"""What the runner sees on the bus during a run, reduced online to the figures
the assertions need (so a long run does not keep every message).

It subscribes to every role with the QUEUE policy (a judge must not skip
states) and keeps: the newest state, joint-limit excess, tracking error
(command answering state k versus the state measured ``lag`` steps later),
end-to-end loop latency (command stamp minus the stamp of the state it
answers: both monotonic clocks of this host), heartbeats per role, and
notable events.

A robot on another machine stamps its states on that machine's monotonic
clock, which shares no origin with ours (the policy, which the runner starts,
stamps its commands on ours): ``clock_offset_ns`` (the robot's clock minus
ours, measured by the runner with pings) brings its stamps onto our clock.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from bus.envelope import Envelope
from bus.latency import LatencyStats
from bus.node import Node
from bus.topics import EVENT, HEARTBEAT, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.joints import LOWER, NAMES, UPPER
from scenarios.trace_recorder import TraceRecorder
from schemas import messages_pb2

# States and commands kept to pair commands with later states: far more than
# any lag or latency a run could have, bounded so memory stays flat.
_PAIR_WINDOW = 2048


@dataclass
class RoleHealth:
    last_heartbeat: float = 0.0  # runner's monotonic seconds
    heartbeats: int = 0
    state: str = ""
    detail: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


@dataclass
class HoldWatch:
    """Position drift after a node was killed, from ``settle_s`` after the kill."""

    kill_sim_time: float
    settle_s: float
    reference: np.ndarray | None = None
    max_drift: float = 0.0
    samples: int = 0
    hold_commands: int = 0


def ordered(names: list[str] | tuple[str, ...], values: list[float], size: int = len(NAMES)) -> np.ndarray | None:
    """Finite values in canonical joint order; None when they cannot be."""
    if not all(map(math.isfinite, values)):
        return None
    if not names or tuple(names) == NAMES:  # the common case, kept cheap: it runs for every message
        return np.array(values, dtype=float) if len(values) == size else None
    if len(names) != len(values) or set(names) != set(NAMES):
        return None
    index = {name: i for i, name in enumerate(names)}
    return np.array([values[index[name]] for name in NAMES], dtype=float)


class Monitor:
    def __init__(self, node: Node, lower: np.ndarray = LOWER, upper: np.ndarray = UPPER,
                 tracking_lag: int = 2, limit_margin: float = 0.0) -> None:
        self.node = node
        # camera: heartbeats of `hil node camera` (an endpoints file from before cameras has no such role)
        roles = [r for r in ("robot", "policy", "recorder", "camera") if r in node.endpoints.roles]
        self.sub = node.subscribe(roles, [JOINT_STATE, JOINT_COMMAND, HEARTBEAT, EVENT], policy=QueuePolicy.QUEUE)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.tracking_lag = tracking_lag
        self.limit_margin = limit_margin
        # The robot's monotonic clock minus ours: 0 on one host.
        self.clock_offset_ns = 0
        self.health: dict[str, RoleHealth] = {}
        self.events: deque[messages_pb2.Event] = deque(maxlen=50)
        self.event_counts: dict[str, int] = {}
        # The run over time for report.html (the runner adds the judged states).
        self.trace = TraceRecorder()
        self.reset_stats()

    def reset_stats(self) -> None:
        """Forget states and commands (called at the robot's reset)."""
        self.state: messages_pb2.JointState | None = None
        self.position: np.ndarray | None = None
        self.states = 0
        self.commands = 0
        self.hold_commands = 0
        self.last_state_wall = time.monotonic()
        self.limit_excess = 0.0
        self.limit_where = ""
        self.tracking_max = 0.0
        self.tracking_sum = 0.0
        self.tracking_count = 0
        self.tracking_where = ""
        self.latency = LatencyStats()
        self.bad_states = 0
        self.stale_states = 0
        self._episode_ns = 0
        # After a reset, states before the robot's state 0 are the real arm
        # still moving to the reset pose (its old episode): not judged.
        self._awaiting_zero = False
        # Off while the robot moves to its reset pose (the real arm ignores
        # commands then): tracking means following the policy's commands.
        self.tracking = True
        self._state_stamp: dict[int, int] = {}
        self._state_pos: dict[int, np.ndarray] = {}
        self._command_pos: dict[int, np.ndarray] = {}
        self._answered: set[int] = set()
        # Commands taken before the state they answer: the runner reads robot
        # and policy over separate connections, fair-queued, so when it falls
        # behind a command can come out of its socket ahead of its state.
        self._early: dict[int, list[messages_pb2.JointCommand]] = {}
        self.newest_answer = -1  # the highest obs_seq of a command answering a state of this episode
        self.hold: HoldWatch | None = None

    def new_episode(self, since_ns: int) -> None:
        """The robot was reset at ``since_ns`` (its clock) and its seq restarts
        at 0: states stamped before are from the old episode and are dropped,
        and so are later ones until its state 0 (the real arm publishes state 0
        only once it reached the reset pose). Figures that span the run
        (limits, tracking, latency) are kept."""
        self._awaiting_zero = True
        self._state_stamp.clear()
        self._state_pos.clear()
        self._command_pos.clear()
        self._answered.clear()
        self._early.clear()
        self.newest_answer = -1
        self._episode_ns = since_ns
        self.tracking = False
        self.trace.new_episode()

    def discard_pending(self) -> None:
        """Drop what is queued (states from before a reset), keeping health news."""
        for envelope in self.sub.drain():
            if envelope.topic in (HEARTBEAT, EVENT):
                self._take(envelope)

    def poll(self) -> list[tuple[messages_pb2.JointState, np.ndarray]]:
        """Take everything waiting; returns the new joint states (with canonical positions) in order."""
        new_states = []
        for envelope in self.sub.drain():
            state = self._take(envelope)
            if state is not None and self.position is not None:
                new_states.append((state, self.position))
        return new_states

    def watch_hold(self, kill_sim_time: float, settle_s: float) -> None:
        self.hold = HoldWatch(kill_sim_time, settle_s)

    # -- per message -------------------------------------------------------------
    def _take(self, envelope: Envelope) -> messages_pb2.JointState | None:
        message = envelope.message
        if isinstance(message, messages_pb2.JointState):
            return self._on_state(message)
        if isinstance(message, messages_pb2.JointCommand):
            self._on_command(message)
        elif isinstance(message, messages_pb2.Heartbeat):
            self._on_heartbeat(message)
        elif isinstance(message, messages_pb2.Event):
            self._on_event(message)
        return None

    def _on_state(self, state: messages_pb2.JointState) -> messages_pb2.JointState | None:
        position = ordered(state.names, state.position)
        if position is None:
            self.bad_states += 1
            return None
        seq = int(state.seq)
        if state.stamp_ns < self._episode_ns:
            self.stale_states += 1
            return None
        if self._awaiting_zero:
            self.last_state_wall = time.monotonic()  # the robot is alive, still moving to the reset pose
            if seq != 0:
                return None
            self._awaiting_zero = False
        self.state = state
        self.position = position
        self.last_state_wall = time.monotonic()
        if seq in self._state_pos:
            return state  # a re-published state (lockstep waiting for its first command)
        self.states += 1
        self._state_stamp[seq] = int(state.stamp_ns) - self.clock_offset_ns
        self._state_pos[seq] = position
        self._prune(seq)
        for early in self._early.pop(seq, ()):
            # (one stamped before this state answers an older state of that seq: a previous episode's)
            if early.stamp_ns >= self._state_stamp[seq]:
                self._pair(early, seq)
        self._check_limits(position, seq)
        command = self._command_pos.get(seq - self.tracking_lag) if self.tracking else None
        if command is not None:
            error = float(np.max(np.abs(command - position)))
            self.tracking_sum += error
            self.tracking_count += 1
            if error > self.tracking_max:
                self.tracking_max = error
                joint = NAMES[int(np.argmax(np.abs(command - position)))]
                self.tracking_where = f"{joint} at step {seq}, t={state.sim_time:.3f} s"
        if self.hold is not None and state.sim_time >= self.hold.kill_sim_time + self.hold.settle_s:
            if self.hold.reference is None:
                self.hold.reference = position
            drift = float(np.max(np.abs(position - self.hold.reference)))
            self.hold.max_drift = max(self.hold.max_drift, drift)
            self.hold.samples += 1
        return state

    def _check_limits(self, position: np.ndarray, seq: int) -> None:
        excess = np.maximum(self.lower - position, position - self.upper).max()
        if excess > self.limit_excess:
            worst = int(np.argmax(np.maximum(self.lower - position, position - self.upper)))
            self.limit_excess = float(excess)
            self.limit_where = f"{NAMES[worst]} = {position[worst]:.4f} rad at step {seq}"

    def _on_command(self, command: messages_pb2.JointCommand) -> None:
        self.commands += 1
        if command.hold:
            self.hold_commands += 1
        obs_seq = int(command.obs_seq)
        # Only commands for states of this episode: the state travels robot ->
        # runner, its command the longer robot -> policy -> runner, so a
        # command for an unseen state is either early (kept until its state
        # comes) or answers a state from before a reset (dropped with it).
        if obs_seq in self._state_pos:
            self._pair(command, obs_seq)
        elif len(self._early) < _PAIR_WINDOW:
            self._early.setdefault(obs_seq, []).append(command)

    def _pair(self, command: messages_pb2.JointCommand, obs_seq: int) -> None:
        """A command with the state it answers: its target for tracking, and
        (each state's first answer only) the loop latency."""
        self.newest_answer = max(self.newest_answer, obs_seq)
        target = ordered(command.names, command.position)
        if target is not None:
            self._command_pos.setdefault(obs_seq, target)
            self.trace.command(obs_seq, target, bool(command.hold))
        # State 0 may be re-published while the policy joins, so its age says nothing about the loop.
        if obs_seq > 0 and obs_seq not in self._answered:
            self._answered.add(obs_seq)
            latency = (command.stamp_ns - self._state_stamp[obs_seq]) / 1e9
            self.latency.add(latency)
            self.trace.latency(obs_seq, latency)

    def _on_heartbeat(self, beat: messages_pb2.Heartbeat) -> None:
        health = self.health.setdefault(beat.role, RoleHealth())
        health.last_heartbeat = time.monotonic()
        health.heartbeats += 1
        health.state = beat.state
        health.detail = beat.detail
        health.counters = dict(beat.counters)
        if beat.state == "fault":
            text = f"{beat.node}: fault: {beat.detail}"
            if text not in health.faults:
                health.faults.append(text)

    def _on_event(self, event: messages_pb2.Event) -> None:
        self.event_counts[event.code] = self.event_counts.get(event.code, 0) + 1 + int(event.suppressed)
        self.trace.event(event.node, event.severity, event.code, event.text)
        if event.severity >= messages_pb2.WARNING:
            self.events.append(event)

    def _prune(self, seq: int) -> None:
        if len(self._state_pos) > _PAIR_WINDOW:
            cutoff = seq - _PAIR_WINDOW // 2
            for table in (self._state_stamp, self._state_pos, self._command_pos, self._early):
                for key in [k for k in table if k < cutoff]:
                    del table[key]
            self._answered = {k for k in self._answered if k >= cutoff}

    # -- figures -----------------------------------------------------------------
    @property
    def tracking_mean(self) -> float:
        return self.tracking_sum / self.tracking_count if self.tracking_count else math.nan

    def silent_for(self, role: str) -> float:
        health = self.health.get(role)
        return math.inf if health is None else time.monotonic() - health.last_heartbeat
