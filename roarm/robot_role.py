"""The robot's side of the bus contract, written once for every robot node.

A policy must not be able to tell which robot it drives (sim_node's
simulators, hw_node's real arm) from how its commands are judged, from the
JointState it reads, or from what ``info`` says. So both nodes hand those
three things to one ``RobotRole``:

- command intake. A JointCommand is validated whole first, whatever the node
  is doing (``roarm.safety.order_targets``): a bad one is counted as
  ``command.<reason>`` (non_finite, joint_count, unknown_joint) and never
  partly applied. A valid one the node cannot apply now is counted as
  ``command.<why>_ignored`` (estop, torque_off, resetting, stale, fault).
  ``JointCommand.velocity``, when given, is per-joint speed limits that can
  only slow the arm below the node's own limit. Clamps to the joint limits
  and to the speed are counted as ``command.clamped_limits`` and
  ``command.clamped_speed``. Every counter is also reported as a rate-limited
  ``node/event`` with the counter's name as its code.
- the JointState: one message object, filled in place for each state (a
  robot publishes hundreds a second; a fresh message each time costs twice
  the CPU).
- the NodeInfo fields that describe the arm the same way for every robot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bus.node import Node
from roarm.joints import ROARM_M3, JointSpec
from roarm.safety import BadCommand, Checked, check_command, order_targets
from schemas import messages_pb2, services_pb2

Severity = messages_pb2.Severity
Values = np.ndarray | Sequence[float]  # one value per joint (or the TCP's three)


def _floats(values: Values) -> Sequence[float]:
    """What a repeated double field is filled from fastest: a list (or tuple) of Python floats."""
    return values.tolist() if isinstance(values, np.ndarray) else values

# why a valid command is not applied -> (event severity, event text)
IGNORED: dict[str, tuple[int, str]] = {
    "estop": (Severity.WARNING, "emergency stop engaged: holding position, commands ignored"),
    "torque_off": (Severity.WARNING, "torque off: commands ignored"),
    "fault": (Severity.WARNING, "the link to the arm is down: commands ignored until it is back"),
    "resetting": (Severity.INFO, "moving to the reset pose: commands ignored until the episode starts"),
    "stale": (Severity.INFO, "the command answers a state from before the reset: dropped"),
}


@dataclass(frozen=True)
class Desired:
    """A valid command's targets, in the spec's joint order, not yet clamped."""

    position: np.ndarray
    max_velocity: np.ndarray | None  # rad/s per joint the command asks for, at most the node's; None: the node's


class RobotRole:
    """Command checks, the JointState and the NodeInfo of one robot node.

    ``max_velocity`` is the node's own joint speed limit (rad/s, one per
    joint; the spec's by default); a command's velocity field only lowers it.
    """

    def __init__(self, node: Node, spec: JointSpec = ROARM_M3,
                 max_velocity: Sequence[float] | np.ndarray | None = None) -> None:
        self.node = node
        self.counters = node.counters
        self.spec = spec
        self.max_velocity = np.asarray(spec.max_velocity if max_velocity is None else max_velocity, dtype=float)
        self._state = messages_pb2.JointState(names=spec.names, trusted=True)

    # -- command intake -------------------------------------------------------------
    def take(self, command: messages_pb2.JointCommand, ignored: str = "") -> Desired | None:
        """The command's targets, or None when it is rejected or ``ignored``
        (a key of IGNORED: why the node cannot apply it now); counted either way.

        For a node that paces targets itself (the real arm's command filter).
        """
        try:
            max_velocity = self._velocity_limit(command)
            position = order_targets(command.names, command.position, self.spec)
        except BadCommand as bad:
            self._rejected(bad, command.obs_seq)
            return None
        if ignored:
            self._ignored(ignored, command.obs_seq)
            return None
        return Desired(position, max_velocity)

    def check(self, command: messages_pb2.JointCommand, previous: np.ndarray, dt: float,
              ignored: str = "") -> Checked | None:
        """The target to apply now, clamped to the limits and to the speed over
        ``dt`` from ``previous``; None when rejected or ``ignored``. Counted
        either way, clamps included.

        For a node that applies a command in the control period it arrives
        (the simulator).
        """
        try:
            max_velocity = self._velocity_limit(command)
            if ignored:
                order_targets(command.names, command.position, self.spec)
                self._ignored(ignored, command.obs_seq)
                return None
            checked = check_command(command.names, command.position, previous, dt, self.spec,
                                    self.max_velocity if max_velocity is None else max_velocity)
        except BadCommand as bad:
            self._rejected(bad, command.obs_seq)
            return None
        if checked.clamped_limits or checked.clamped_speed:
            self.report_clamps(checked.clamped_limits, checked.clamped_speed, command.obs_seq)
        return checked

    def report_clamps(self, clamped_limits: bool, clamped_speed: bool, obs_seq: int) -> None:
        """Count and report a target clamped to the joint limits and/or the speed."""
        if clamped_limits:
            self.counters["command.clamped_limits"] += 1
            self.node.event(Severity.INFO, "command.clamped_limits",
                            f"command answering state {obs_seq}: target clamped to the joint limits", obs_seq)
        if clamped_speed:
            self.counters["command.clamped_speed"] += 1
            self.node.event(Severity.INFO, "command.clamped_speed",
                            f"command answering state {obs_seq}: target step limited to the joint speed", obs_seq)

    def _velocity_limit(self, command: messages_pb2.JointCommand) -> np.ndarray | None:
        """Per-joint speed limits the command asks for, never above the node's; None if it asks none."""
        if not len(command.velocity):
            return None
        return np.minimum(self.max_velocity, np.abs(order_targets(command.names, command.velocity, self.spec)))

    def _rejected(self, bad: BadCommand, obs_seq: int) -> None:
        self.counters[f"command.{bad.reason}"] += 1
        self.node.event(Severity.WARNING, f"command.{bad.reason}", f"rejected command: {bad.detail}", obs_seq)

    def _ignored(self, why: str, obs_seq: int) -> None:
        code = f"command.{why}_ignored"
        self.counters[code] += 1
        severity, text = IGNORED[why]
        self.node.event(severity, code, text, obs_seq)

    # -- outputs ----------------------------------------------------------------------
    def joint_state(self, stamp_ns: int, seq: int, position: Values, velocity: Values, effort: Values,
                    tcp: Values, sim_time: float, randomization_hash: str = "") -> messages_pb2.JointState:
        """State ``seq`` as it goes on the wire (names in the spec's order, trusted).

        The values are numpy arrays or sequences of Python floats (what
        ``SimBackend.read_floats`` gives: no conversion at all). The same
        message object every call, filled in place: publish it or copy it (a
        reply's constructor copies) before the next call.
        """
        state = self._state
        state.stamp_ns = stamp_ns
        state.seq = seq
        state.position[:] = _floats(position)  # lists fill repeated fields faster than arrays
        state.velocity[:] = _floats(velocity)
        state.effort[:] = _floats(effort)
        state.tcp[:] = _floats(tcp)
        state.sim_time = sim_time
        if state.randomization_hash != randomization_hash:
            state.randomization_hash = randomization_hash
        return state

    def info(self, backend: str, dt: float, mode: str, model_hash: str = "",
             randomization_hash: str = "") -> services_pb2.NodeInfo:
        """The NodeInfo of a robot: the arm's joints, limits and timing; the
        node adds its own ``extra`` and ``metrics``."""
        return services_pb2.NodeInfo(
            backend=backend,
            joint_names=self.spec.names,
            lower=self.spec.lower,
            upper=self.spec.upper,
            max_velocity=self.max_velocity.tolist(),
            dt=dt,
            mode=mode,
            model_hash=model_hash,
            randomization_hash=randomization_hash,
        )
