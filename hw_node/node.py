"""``hil node hw``: the real RoArm-M3 on the bus, role ``robot``, realtime only.

The loop, top to bottom: serve ping/info/shutdown and take a call of reset,
estop or torque, take the newest joint command, read the serial port, follow
the link (fault, reconnect), publish a state for each trustworthy feedback
line, and on each control tick send one target (clamped by limits and speed,
held on a command deadline) and ask for the next feedback line.

What the node does is one explicit ``Mode``, changed only by ``transition``
(its entry and exit actions and its event in one place):

    RUNNING     commands are applied (once fresh feedback seeded the target)
    RESETTING   a slow move to the reset pose; commands are ignored; the new
                episode (state 0) starts once the arm stayed at the pose
    ESTOP       the firmware's e-stop latched (T:0); commands are ignored
    TORQUE_OFF  the servos are limp (T:210 0); commands are ignored
    FAULT       the serial link is down; it reconnects with backoff and the
                node returns to what it did (a reset move is called off)

The policy sees the same contract as with the simulator (roarm.robot_role):
``robot/joint_state`` (seq per published state, tcp by forward kinematics)
in, ``robot/joint_command`` out. What only the real arm has shows up in
heartbeats: a faulted link ("fault"), servos that report nonsense
("degraded: servos unpowered?"), no feedback, torque off, an engaged e-stop.
"""

from __future__ import annotations

import enum
import hashlib
import time
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import Message

from bus.endpoints import Endpoints
from bus.node import Node, Severity
from bus.service import Request
from bus.topics import JOINT_COMMAND, JOINT_STATE
from hw_node.arm import ArmConfig, RoArmM3
from hw_node.control import CommandFilter, ControlConfig
from hw_node.protocol import Feedback
from roarm.joints import MAX_TORQUE, pose
from roarm.kinematics import fk
from roarm.robot_role import RobotRole
from roarm.safety import BadCommand, order_targets
from schemas import messages_pb2, services_pb2

TORQUE_ON_EXIT = ("keep", "off")
# Control periods the arm must stay at the reset pose before the new episode
# starts: a moving arm passes through the pose without being there.
SETTLE_PERIODS = 3


class Mode(enum.Enum):
    RUNNING = "running"
    RESETTING = "resetting"
    ESTOP = "estop"
    TORQUE_OFF = "torque_off"
    FAULT = "fault"


# Why commands are not applied in a mode (roarm.robot_role counts command.<why>_ignored).
IGNORING = {Mode.RUNNING: "", Mode.RESETTING: "resetting", Mode.ESTOP: "estop", Mode.TORQUE_OFF: "torque_off",
            Mode.FAULT: "fault"}
# The modes in which the node sends targets to the arm.
COMMANDING = (Mode.RUNNING, Mode.RESETTING)
# The event a transition emits, by its reason: (severity, code).
TRANSITION_EVENTS: dict[str, tuple[int, str]] = {
    "reset": (Severity.INFO, "hw.reset"),
    "reset_done": (Severity.INFO, "hw.reset_done"),
    "reset_timeout": (Severity.WARNING, "hw.reset_timeout"),
    "estop": (Severity.CRITICAL, "hw.estop"),
    "estop_cleared": (Severity.WARNING, "hw.estop_cleared"),
    "torque_off": (Severity.WARNING, "hw.torque_off"),
    "torque_on": (Severity.INFO, "hw.torque_on"),
    "fault": (Severity.ERROR, "hw.fault"),
    "reconnected": (Severity.WARNING, "hw.reconnected"),
}
# Reasons that end a reset move with the new episode (the others call it off).
EPISODE_STARTS = ("reset_done", "reset_timeout")


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


@dataclass
class ResetMove:
    """The move to the reset pose while the node is RESETTING."""

    goal: np.ndarray
    started: float
    settled_since: float | None = None  # at the pose since (None: not there now)


class HwNode:
    def __init__(self, config: HwConfig, endpoints: Endpoints) -> None:
        self.config = config
        self.node = Node("robot", "hw", endpoints, info=self.describe, heartbeat_period_s=config.heartbeat_period_s)
        self.counters = self.node.counters
        self.role = RobotRole(self.node, config.control.spec, config.control.max_velocity)
        self.arm = RoArmM3(config.arm, self.counters)
        self.filter = CommandFilter(config.control)
        self.commands = self.node.subscribe("policy", [JOINT_COMMAND])
        # No handlers: reset, estop and torque are events of the loop (on_request), never callbacks.
        self.node.add_service("reset", services_pb2.ResetRequest)
        self.node.add_service("estop", services_pb2.EstopRequest)
        self.node.add_service("torque", services_pb2.TorqueRequest)
        self.mode = Mode.RUNNING
        self.torque_on = True  # what the servos were last told (ESTOP clears to TORQUE_OFF when off)
        self.resume = Mode.RUNNING  # FAULT: the mode to return to once the link is back
        self.move: ResetMove | None = None  # RESETTING only
        self.seq = 0  # JointState.seq of the next state published
        self.episode_start = time.monotonic()  # sim_time counts from here (start or the last reset)
        self.generation = 0  # the serial connection the feedback comes from
        self.trusted = False  # the latest feedback line is plausible
        self.previous: tuple[float, np.ndarray] | None = None  # the last published (time, position): velocity
        self.next_tick = 0.0
        self.rate_capped = False
        self.states_published = 0
        self.commands_sent = 0

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
            if self.node.request is not None:
                self.node.answer(self.on_request)
            for envelope in self.commands.drain():
                assert isinstance(envelope.message, messages_pb2.JointCommand)
                self.on_command(envelope.message, now)
            feedback = self.arm.poll(now)
            self.follow_link(now)
            if feedback is not None:
                self.on_feedback(feedback, now)
            if now >= self.next_tick:
                self.control_tick(now)
            self.update_health(now)
        self.finish()

    def on_command(self, command: messages_pb2.JointCommand, now: float) -> None:
        """A valid command becomes the desired target, unless the mode ignores
        commands or it answers a state this episode has not published (one
        from before the reset, planned from where the arm was then)."""
        why = IGNORING[self.mode] or ("stale" if command.obs_seq >= self.seq else "")
        desired = self.role.take(command, why)
        if desired is not None:
            self.filter.accept((), desired.position, now, command.obs_seq, desired.max_velocity)

    def follow_link(self, now: float) -> None:
        """A serial fault enters FAULT; a new connection leaves it (the arm may have rebooted)."""
        if self.arm.generation != self.generation:
            self.generation = self.arm.generation
            if self.mode is not Mode.FAULT:  # faulted and reopened within one poll
                self.transition(Mode.FAULT, "fault", now, self.arm.fault or "serial link reopened")
            self.transition(self.resume, "reconnected", now,
                            f"serial {self.config.arm.link.port} reopened; waiting for fresh feedback")
        elif self.arm.fault and self.mode is not Mode.FAULT:
            self.transition(Mode.FAULT, "fault", now, self.arm.fault)

    def on_feedback(self, feedback: Feedback, now: float) -> None:
        if self.arm.untrusted_why:
            self.trusted = False
            self.filter.unseed()
            self.previous = None
            return
        self.trusted = True
        if not self.filter.seeded and self.mode in COMMANDING:
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
        if self.mode is Mode.RESETTING:
            self.follow_reset(now)
        # Ask first: the reply (~250 bytes, ~23 ms) crosses the wire while the
        # arm still receives the T:102 line, so the state arrives ~25 ms into
        # the period and the policy's answer is in before the next tick.
        self.arm.request_feedback(now)
        measured = self.arm.latest.position if self.trusted and self.arm.latest is not None else None
        tick = self.filter.tick(now, measured)
        if tick.target is not None and self.arm.link.is_open:
            self.role.report_clamps(tick.clamped_limits, tick.clamped_speed, self.filter.obs_seq)
            if tick.hold:
                self.counters["deadline_hold"] += 1
                self.node.event(Severity.WARNING, "deadline_hold",
                                f"no command for {self.config.control.deadline_s:.2f} s: holding the measured position")
            if self.arm.send_joints(tick.target, self.filter.speed_limit):
                self.commands_sent += 1

    def follow_reset(self, now: float) -> None:
        """RESETTING, each tick: done once the arm stayed at the pose for
        SETTLE_PERIODS control periods (each with the goal already on the
        wire: an arm moving when the reset came passes through the pose), or
        at the timeout; otherwise keep the goal alive. Without fresh feedback
        the move pauses: the filter re-seeds from the next line and it goes on."""
        move = self.move
        assert move is not None
        latest = self.arm.latest
        at_pose = (latest is not None and self.trusted
                   and np.max(np.abs(latest.position - move.goal)) < self.config.reset_tolerance)
        if not at_pose:
            move.settled_since = None
        elif move.settled_since is None:
            move.settled_since = now
        if move.settled_since is not None and now - move.settled_since >= SETTLE_PERIODS * self.period():
            self.transition(Mode.RUNNING, "reset_done", now, f"reached the reset pose in {now - move.started:.1f} s")
        elif now - move.started > self.config.reset_timeout_s and latest is not None and self.filter.seeded:
            self.transition(Mode.RUNNING, "reset_timeout", now,
                            f"reset pose not reached within {self.config.reset_timeout_s:g} s; "
                            "the episode starts where the arm is")
        elif self.filter.seeded:
            self.filter.accept((), move.goal, now, max_velocity=self.config.reset_velocity)
            self.filter.fresh = False

    def update_health(self, now: float) -> None:
        state, detail = "ok", ""
        age = self.arm.feedback_age(now)
        if self.arm.fault:
            state, detail = "fault", self.arm.fault
        elif self.mode is Mode.ESTOP:
            state, detail = "degraded", "e-stop engaged (estop engage=false clears it)"
        elif self.arm.latest is not None and not self.trusted:
            state, detail = "degraded", f"degraded: {self.arm.untrusted_why}"
        elif age > self.config.arm.feedback_timeout_s:
            state, detail = "degraded", f"no feedback from the arm for {age:.1f} s"
        elif self.mode is Mode.TORQUE_OFF:
            state, detail = "degraded", "torque off"
        elif self.mode is Mode.RESETTING:
            detail = "resetting"
        elif self.filter.holding:
            detail = "holding (no command)"
        if state == "degraded" and self.node.state != "degraded":  # a fault is reported by its transition
            self.node.event(Severity.WARNING, "hw.degraded", detail)
        self.node.set_state(state, detail)

    def finish(self) -> None:
        """Leave the arm safe: hold where it is, then torque as configured."""
        latest = self.arm.latest
        if self.arm.link.is_open and latest is not None and self.trusted and self.mode is not Mode.ESTOP:
            self.arm.send_joints(self.config.control.spec.clamp(latest.position), self.filter.speed_limit)
        if self.arm.link.is_open and self.config.torque_on_exit == "off":
            self.arm.set_torque(False)
        self.close()

    def close(self) -> None:
        self.arm.close()
        self.node.close()

    # -- the mode ------------------------------------------------------------------
    def transition(self, new: Mode, reason: str, now: float, text: str, goal: np.ndarray | None = None) -> None:
        """Change the mode: the old mode's exit actions, the new one's entry
        actions, then its event (TRANSITION_EVENTS[reason], ``text``).

        Leaving RESETTING ends the move: with the new episode for
        EPISODE_STARTS (the target re-seeded from the measured position, the
        next state is state 0), called off otherwise. Entering RESETTING
        starts a move to ``goal``. Every other change stops commanding until
        fresh feedback seeds the target again (``on_feedback``, in RUNNING or
        RESETTING), so no command from before it is ever replayed.
        """
        old, self.mode = self.mode, new
        if old is Mode.RESETTING:
            self.move = None
        if new is Mode.RESETTING:
            assert goal is not None
            self.move = ResetMove(goal, now)
            self.filter.accept((), goal, now, max_velocity=self.config.reset_velocity)
        elif old is Mode.RESETTING and new is Mode.RUNNING and reason in EPISODE_STARTS:
            assert self.arm.latest is not None
            self.filter.seed(self.arm.latest.position, now)
            self.seq = 0
            self.episode_start = now
        else:
            self.filter.unseed()
        if new is Mode.FAULT:
            self.resume = old if old in (Mode.ESTOP, Mode.TORQUE_OFF) else Mode.RUNNING
            self.previous = None
        severity, code = TRANSITION_EVENTS[reason]
        self.node.event(severity, code, text)

    def ready_mode(self) -> Mode:
        """Where an e-stop clears to: RUNNING, or TORQUE_OFF while the torque is off."""
        return Mode.RUNNING if self.torque_on else Mode.TORQUE_OFF

    # -- states --------------------------------------------------------------------
    def period(self) -> float:
        """The control period: the configured rate, or slower when the link cannot carry it."""
        return 1.0 / min(self.config.control.rate_hz, self.arm.link_rate_hz())

    def state(self, feedback: Feedback, now: float) -> messages_pb2.JointState:
        """The state for a feedback line (numbered on from the last one, or 0 at an episode's start)."""
        position = feedback.position
        velocity = np.zeros(6)
        if self.previous is not None and now > self.previous[0]:
            velocity = (position - self.previous[1]) / (now - self.previous[0])
        self.previous = (now, position)
        return self.role.joint_state(int(now * 1e9), self.seq, position, velocity, feedback.load * MAX_TORQUE,
                                     fk(position), now - self.episode_start)

    def publish_state(self, state: messages_pb2.JointState) -> None:
        self.node.publish(JOINT_STATE, state, sent_ns=state.stamp_ns)
        self.seq = state.seq + 1
        self.states_published += 1

    # -- services (events of the loop) ----------------------------------------------------
    def on_request(self, request: Request) -> Message:
        now = time.monotonic()
        message = request.message
        if isinstance(message, services_pb2.ResetRequest):
            return self.reset(message, now)
        if isinstance(message, services_pb2.EstopRequest):
            return self.estop(message, now)
        assert isinstance(message, services_pb2.TorqueRequest)
        return self.torque(message, now)

    def reset(self, request: services_pb2.ResetRequest, now: float) -> services_pb2.ResetReply:
        """Start a slow move to the pose and answer at once with where the arm is now.

        The move takes seconds on a real arm, longer than a service call may
        block; policy commands are ignored until the pose is reached. States
        keep coming during the move with seq counting on (the old episode);
        the new episode (state 0) starts only at the pose (``transition``),
        so a policy plans from where the arm really is, not from where the
        move began.
        """
        try:
            goal = order_targets([], list(request.position)) if request.position else pose("home")
        except BadCommand as exc:
            raise self.node.refuse(f"reset pose: {exc.detail}") from None
        if self.mode is Mode.ESTOP:
            raise self.node.refuse("e-stop engaged: clear it first (estop engage=false)")
        if self.mode is Mode.TORQUE_OFF:
            raise self.node.refuse("torque off: switch it on first (torque enable=true)")
        latest = self.arm.latest
        if self.mode is Mode.FAULT or latest is None or not self.trusted or not self.filter.seeded:
            raise self.node.refuse(f"no trustworthy feedback from the arm ({self.node.detail or 'not seeded yet'})")
        goal = self.config.control.spec.clamp(goal)
        self.transition(Mode.RESETTING, "reset", now,
                        f"moving to the reset pose {goal.round(3).tolist()} at {self.config.reset_velocity:g} rad/s",
                        goal)
        state = self.state(latest, now)  # the start of the move, still in the old episode's numbering
        self.publish_state(state)
        if request.HasField("randomization"):
            self.node.event(Severity.INFO, "hw.randomization_ignored", "the real arm cannot be randomized")
        return services_pb2.ResetReply(state=state, randomization_hash="")

    def estop(self, request: services_pb2.EstopRequest, now: float) -> services_pb2.Ack:
        if not self.arm.estop(request.engage):
            raise self.node.refuse(f"serial link down: {self.arm.fault}")
        if request.engage:
            self.transition(Mode.ESTOP, "estop", now, "e-stop engaged (T:0)")
            return services_pb2.Ack(ok=True, text="e-stop engaged")
        self.transition(self.ready_mode(), "estop_cleared", now, "e-stop cleared (T:999)")
        return services_pb2.Ack(ok=True, text="e-stop cleared")

    def torque(self, request: services_pb2.TorqueRequest, now: float) -> services_pb2.Ack:
        if not self.arm.set_torque(request.enable):
            raise self.node.refuse(f"serial link down: {self.arm.fault}")
        self.torque_on = request.enable
        if self.mode is not Mode.ESTOP:  # an engaged e-stop stays; it clears to this torque setting
            self.transition(self.ready_mode(), "torque_on" if request.enable else "torque_off", now,
                            f"torque {'on' if request.enable else 'off'} (T:210)")
        return services_pb2.Ack(ok=True, text=f"torque {'on' if request.enable else 'off'} (T:210)")

    def describe(self) -> services_pb2.NodeInfo:
        link = self.config.arm.link
        firmware = " | ".join(self.arm.firmware_text)
        latest = self.arm.latest
        info = self.role.info("hw", self.period(), "realtime",
                              hashlib.sha256(firmware.encode()).hexdigest() if firmware else "")
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
            "control_mode": self.mode.value,
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
