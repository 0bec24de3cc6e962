"""``hil node hw``: the real RoArm-M3 on the bus, role ``robot``, realtime only.

The loop, top to bottom: serve services, take the newest joint command,
read the serial port, publish a state for each trustworthy feedback line,
and on each control tick send one target (clamped by limits and speed,
held on a command deadline) and ask for the next feedback line.

The policy sees the same contract as with the simulator: ``robot/joint_state``
(seq per published state, tcp by forward kinematics) in, ``robot/joint_command``
out. What only the real arm has shows up in heartbeats: a faulted link
("fault"), servos that report nonsense ("degraded: servos unpowered?"), no
feedback, torque off, an engaged e-stop.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from bus.endpoints import Endpoints
from bus.envelope import Envelope
from bus.node import Node, Severity
from bus.topics import JOINT_COMMAND, JOINT_STATE
from hw_node.arm import ArmConfig, RoArmM3
from hw_node.control import CommandFilter, ControlConfig
from hw_node.protocol import Feedback
from roarm.joints import MAX_TORQUE, pose
from roarm.kinematics import fk
from roarm.safety import BadCommand, order_targets
from schemas import messages_pb2, services_pb2

TORQUE_ON_EXIT = ("keep", "off")
# Control periods the arm must stay at the reset pose before the new episode
# starts: a moving arm passes through the pose without being there.
SETTLE_PERIODS = 3


@dataclass(frozen=True)
class HwConfig:
    arm: ArmConfig
    control: ControlConfig
    reset_velocity: float = 0.5  # rad/s: a reset moves slowly
    reset_tolerance: float = 0.03  # rad: the reset pose counts as reached
    reset_timeout_s: float = 30.0
    torque_on_exit: str = "keep"  # "off" lets the arm go limp (it may fall)
    poll_s: float = 0.002  # how often the serial port is read between ticks
    heartbeat_period_s: float = 0.5


class HwNode:
    def __init__(self, config: HwConfig, endpoints: Endpoints) -> None:
        self.config = config
        self.node = Node("robot", "hw", endpoints, info=self.describe, heartbeat_period_s=config.heartbeat_period_s)
        self.counters = self.node.counters
        self.arm = RoArmM3(config.arm, self.counters)
        self.filter = CommandFilter(config.control)
        self.commands = self.node.subscribe("policy", [JOINT_COMMAND])
        self.node.add_service("reset", services_pb2.ResetRequest, self.reset)
        self.node.add_service("estop", services_pb2.EstopRequest, self.estop)
        self.node.add_service("torque", services_pb2.TorqueRequest, self.torque)
        self.seq = 0
        self.epoch = time.monotonic()  # sim_time counts from here (start or last reset)
        self.generation = 0
        self.trusted = False
        self.estopped = False
        self.torque_on = True
        self.reset_goal: np.ndarray | None = None
        self.reset_started = 0.0
        self.reset_settled_since: float | None = None
        self.next_tick = 0.0
        self.previous: tuple[float, np.ndarray] | None = None
        self.states_published = 0
        self.commands_sent = 0
        self.rate_capped = False

    # -- the loop ------------------------------------------------------------------
    def connect(self) -> None:
        """Open the port; serial.SerialException (or ValueError for a bad URL)
        propagates so the CLI can say what is wrong in one line."""
        self.arm.connect()
        self.generation = self.arm.generation
        self.node.event(Severity.INFO, "hw.connected", f"serial {self.config.arm.link.port} open")

    def run(self) -> None:
        """The loop, until a signal or the shutdown service stops it; leaves the arm holding."""
        while self.node.running:
            self.node.spin(timeout_ms=max(0, int(min(self.config.poll_s, self.next_tick - time.monotonic()) * 1000)))
            now = time.monotonic()
            for envelope in self.commands.drain():
                self.on_command(envelope, now)
            feedback = self.arm.poll(now)
            if self.arm.generation != self.generation:
                self.on_reconnect()
            if feedback is not None:
                self.on_feedback(feedback, now)
            if now >= self.next_tick:
                self.control_tick(now)
            self.update_health(now)
        self.finish()

    def on_command(self, envelope: Envelope, now: float) -> None:
        command = envelope.message
        assert isinstance(command, messages_pb2.JointCommand)
        ignored = self.ignoring_commands()
        try:
            order_targets(list(command.names), list(command.position))  # reject bad input whatever the state
            # Optional per-joint speed limits (rad/s) can only slow the arm further.
            limits = np.abs(order_targets(list(command.names), list(command.velocity))) if command.velocity else None
            if ignored:
                self.counters[f"command.{ignored}_ignored"] += 1
                return
            if command.obs_seq >= self.seq:
                # It answers a state this episode has not published: one from
                # before the reset, planned from where the arm was then.
                self.counters["command.stale_ignored"] += 1
                return
            self.filter.accept(list(command.names), list(command.position), now, command.obs_seq, limits)
        except BadCommand as exc:
            self.counters[f"command.{exc.reason}"] += 1
            self.node.event(Severity.WARNING, f"command.{exc.reason}", exc.detail, command.obs_seq)

    def ignoring_commands(self) -> str:
        """Why policy commands are not applied now ("" when they are)."""
        if self.estopped:
            return "estop"
        if not self.torque_on:
            return "torque_off"
        if self.reset_goal is not None:
            return "resetting"
        return ""

    def on_reconnect(self) -> None:
        """A new connection: forget every target; fresh feedback will re-seed."""
        self.generation = self.arm.generation
        self.filter.unseed()
        self.previous = None
        self.reset_goal = None  # the arm may have rebooted: never resume a move blindly
        self.node.event(Severity.WARNING, "hw.reconnected",
                        f"serial {self.config.arm.link.port} reopened; waiting for fresh feedback")

    def on_feedback(self, feedback: Feedback, now: float) -> None:
        if self.arm.untrusted_why:
            self.trusted = False
            self.filter.unseed()
            self.previous = None
            return
        self.trusted = True
        if not self.filter.seeded and not self.estopped and self.torque_on:
            self.filter.seed(feedback.position, now)
        self.publish_state(self.state(feedback, now))

    def control_tick(self, now: float) -> None:
        period = self.period()
        if (period > 1.0 / self.config.control.rate_hz) != self.rate_capped:
            self.rate_capped = not self.rate_capped
            if self.rate_capped:
                self.node.event(Severity.WARNING, "hw.rate_capped", f"{self.config.control.rate_hz:g} Hz does not "
                                f"fit the {self.config.arm.link.baud}-baud link; using {1.0 / period:.1f} Hz")
        self.next_tick = max(self.next_tick + period, now)
        if self.arm.feedback_age(now) > self.config.arm.feedback_timeout_s:
            self.filter.unseed()  # never command an arm we cannot see
        if self.reset_goal is not None:
            self.reset_progress(now)
        # Ask first: the reply (~250 bytes, ~23 ms) crosses the wire while the
        # arm still receives the T:102 line, so the state arrives ~25 ms into
        # the period and the policy's answer is in before the next tick.
        self.arm.request_feedback(now)
        measured = self.arm.latest.position if self.trusted and self.arm.latest is not None else None
        tick = self.filter.tick(now, measured)
        if tick.target is not None and self.arm.link.is_open:
            if tick.clamped_limits:
                self.counters["command.clamped_limits"] += 1
                self.node.event(Severity.WARNING, "command.clamped_limits", "target clamped to the joint limits")
            if tick.clamped_speed:
                self.counters["command.clamped_speed"] += 1
                self.node.event(Severity.INFO, "command.clamped_speed", "target step limited to the joint speed")
            if tick.hold:
                self.counters["deadline_hold"] += 1
                self.node.event(Severity.WARNING, "deadline_hold",
                                f"no command for {self.config.control.deadline_s:.2f} s: holding the measured position")
            if self.arm.send_joints(tick.target, self.filter.speed_limit):
                self.commands_sent += 1

    def update_health(self, now: float) -> None:
        state, detail = "ok", ""
        age = self.arm.feedback_age(now)
        if self.arm.fault:
            state, detail = "fault", self.arm.fault
        elif self.estopped:
            state, detail = "degraded", "e-stop engaged (estop engage=false clears it)"
        elif self.arm.latest is not None and not self.trusted:
            state, detail = "degraded", f"degraded: {self.arm.untrusted_why}"
        elif age > self.config.arm.feedback_timeout_s:
            state, detail = "degraded", f"no feedback from the arm for {age:.1f} s"
        elif not self.torque_on:
            state, detail = "degraded", "torque off"
        elif self.reset_goal is not None:
            detail = "resetting"
        elif self.filter.holding:
            detail = "holding (no command)"
        if state != self.node.state and state != "ok":
            self.node.event(Severity.ERROR if state == "fault" else Severity.WARNING, f"hw.{state}", detail)
        self.node.set_state(state, detail)

    def finish(self) -> None:
        """Leave the arm safe: hold where it is, then torque as configured."""
        latest = self.arm.latest
        if self.arm.link.is_open and latest is not None and self.trusted and not self.estopped:
            self.arm.send_joints(self.config.control.spec.clamp(latest.position), self.filter.speed_limit)
        if self.arm.link.is_open and self.config.torque_on_exit == "off":
            self.arm.set_torque(False)
        self.close()

    def close(self) -> None:
        self.arm.close()
        self.node.close()

    # -- states --------------------------------------------------------------------
    def period(self) -> float:
        """The control period: the configured rate, or slower when the link cannot carry it."""
        return 1.0 / min(self.config.control.rate_hz, self.arm.link_rate_hz())

    def state(self, feedback: Feedback, now: float) -> messages_pb2.JointState:
        position = feedback.position
        velocity = np.zeros(6)
        if self.previous is not None and now > self.previous[0]:
            velocity = (position - self.previous[1]) / (now - self.previous[0])
        self.previous = (now, position)
        return messages_pb2.JointState(
            stamp_ns=int(now * 1e9),
            seq=self.seq,
            names=list(self.config.control.spec.names),
            position=position.tolist(),
            velocity=velocity.tolist(),
            effort=(feedback.load * MAX_TORQUE).tolist(),
            sim_time=now - self.epoch,
            trusted=True,
            tcp=fk(position).tolist(),
        )

    def publish_state(self, state: messages_pb2.JointState) -> None:
        self.node.publish(JOINT_STATE, state, sent_ns=state.stamp_ns)
        self.seq = state.seq + 1
        self.states_published += 1

    # -- services ------------------------------------------------------------------
    def reset(self, request: services_pb2.ResetRequest) -> services_pb2.ResetReply:
        """Start a slow move to the pose and answer at once with where the arm is now.

        The move takes seconds on a real arm, longer than a service call may
        block; policy commands are ignored until the pose is reached. States
        keep coming during the move with seq counting on (the old episode);
        the new episode (state 0) starts only at the pose (``start_episode``),
        so a policy plans from where the arm really is, not from where the
        move began.
        """
        try:
            goal = order_targets([], list(request.position)) if request.position else pose("home")
        except BadCommand as exc:
            raise self.node.refuse(f"reset pose: {exc.detail}") from None
        latest = self.arm.latest
        if latest is None or not self.trusted or not self.filter.seeded:
            raise self.node.refuse(f"no trustworthy feedback from the arm ({self.node.detail or 'not seeded yet'})")
        now = time.monotonic()
        self.reset_goal = self.config.control.spec.clamp(goal)
        self.reset_started = now
        self.reset_settled_since = None
        self.filter.accept((), self.reset_goal, now, max_velocity=self.config.reset_velocity)
        state = self.state(latest, now)  # the start of the move, still in the old episode's numbering
        self.publish_state(state)
        if request.HasField("randomization"):
            self.node.event(Severity.INFO, "hw.randomization_ignored", "the real arm cannot be randomized")
        return services_pb2.ResetReply(state=state, randomization_hash="")

    def reset_progress(self, now: float) -> None:
        assert self.reset_goal is not None
        latest = self.arm.latest
        at_pose = (latest is not None and self.trusted
                   and np.max(np.abs(latest.position - self.reset_goal)) < self.config.reset_tolerance)
        # At the pose is not enough: an arm that was moving when the reset came
        # passes through it. Done once it stayed there for SETTLE_PERIODS
        # control periods, each with the reset goal already on the wire.
        if not at_pose:
            self.reset_settled_since = None
        elif self.reset_settled_since is None:
            self.reset_settled_since = now
        if at_pose and self.reset_settled_since is not None and \
                now - self.reset_settled_since >= SETTLE_PERIODS * self.period():
            self.reset_settled_since = None
            self.node.event(Severity.INFO, "hw.reset_done", f"reached the reset pose in {now - self.reset_started:.1f} s")
            self.start_episode(latest.position, now)
        elif now - self.reset_started > self.config.reset_timeout_s and latest is not None and self.filter.seeded:
            self.node.event(Severity.WARNING, "hw.reset_timeout",
                            f"reset pose not reached within {self.config.reset_timeout_s:g} s; "
                            "the episode starts where the arm is")
            self.start_episode(latest.position, now)
        elif self.filter.seeded:
            self.filter.accept((), self.reset_goal, now, max_velocity=self.config.reset_velocity)
            self.filter.fresh = False
        # else: no fresh feedback this tick (a busy host, a burst of noise): the
        # filter re-seeds from the next feedback and the move goes on; a new
        # connection (on_reconnect) calls the move off instead.

    def start_episode(self, measured: np.ndarray, now: float) -> None:
        """The reset move is over: the next state published is state 0 (sim_time 0).

        The target is re-seeded from the measured position, so the arm stays
        where it is until a command answering a state of this episode arrives.
        """
        self.reset_goal = None
        self.filter.seed(measured, now)
        self.seq = 0
        self.epoch = now

    def estop(self, request: services_pb2.EstopRequest) -> services_pb2.Ack:
        if not self.arm.estop(request.engage):
            raise self.node.refuse(f"serial link down: {self.arm.fault}")
        self.estopped = request.engage
        self.filter.unseed()
        self.reset_goal = None
        self.node.event(Severity.CRITICAL if request.engage else Severity.WARNING,
                        "hw.estop" if request.engage else "hw.estop_cleared",
                        "e-stop engaged (T:0)" if request.engage else "e-stop cleared (T:999)")
        return services_pb2.Ack(ok=True, text="e-stop engaged" if request.engage else "e-stop cleared")

    def torque(self, request: services_pb2.TorqueRequest) -> services_pb2.Ack:
        if not self.arm.set_torque(request.enable):
            raise self.node.refuse(f"serial link down: {self.arm.fault}")
        self.torque_on = request.enable
        self.filter.unseed()  # re-seed from where the arm is now, whichever way
        self.reset_goal = None
        return services_pb2.Ack(ok=True, text=f"torque {'on' if request.enable else 'off'} (T:210)")

    def describe(self) -> services_pb2.NodeInfo:
        spec = self.config.control.spec
        link = self.config.arm.link
        firmware = " | ".join(self.arm.firmware_text)
        latest = self.arm.latest
        info = services_pb2.NodeInfo(
            backend="hw",
            joint_names=list(spec.names),
            lower=list(spec.lower),
            upper=list(spec.upper),
            max_velocity=list(self.config.control.max_velocity),
            dt=self.period(),
            mode="realtime",
            model_hash=hashlib.sha256(firmware.encode()).hexdigest() if firmware else "",
        )
        info.extra.update({
            "port": link.port,
            "baud": str(link.baud),
            "firmware_text": firmware,
            "reports_supply": "unknown" if latest is None else ("yes" if latest.supply is not None else "no"),
            "feedback_line_bytes": str(self.arm.feedback_bytes),
            "command_line_bytes": str(self.arm.command_bytes),
            "control_rate_hz": f"{1.0 / self.period():.2f}",
            "link_max_rate_hz": f"{self.arm.link_rate_hz():.2f}",
            "deadline_s": f"{self.config.control.deadline_s:g}",
            "torque_on_exit": self.config.torque_on_exit,
        })
        c = self.arm.link.counters
        info.metrics.update({
            "states_published": float(self.states_published),
            "commands_sent": float(self.commands_sent),
            "serial_tx_lines": float(c.tx_lines),
            "serial_tx_bytes": float(c.tx_bytes),
            "serial_rx_bytes": float(c.rx_bytes),
            "serial_rx_backlog_max": float(c.rx_backlog_max),
            "serial_tx_backlog": float(c.tx_backlog),
            "serial_tx_backlog_max": float(c.tx_backlog_max),
            "serial_line_pending": float(self.arm.link.lines.pending),
            "commands_superseded": float(self.commands.superseded),
        })
        return info
