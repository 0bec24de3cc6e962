"""The policy node: answers every robot state with a joint command.

Read top to bottom in ``PolicyNode.run``: wait for the robot's ``info`` and
check the policy against it (``compat.check_fit``, the rule the runner and
``hil policy inspect`` apply too), then loop: take the newest goal, take
the newest state, ask the policy, let the watchdog judge the answer, publish
it with ``obs_seq = state.seq``. Answering every state is all lockstep needs;
nothing here knows whether the robot is simulated.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zmq

from bus.client import NodeClient, WrongReply
from bus.endpoints import Endpoints
from bus.envelope import Envelope
from bus.errors import Failed
from bus.node import Node
from bus.phases import phase_clock
from bus.service import ServiceError, ServiceUnavailable
from bus.images import Image
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE, calibration_topic, camera_of
from policy_node.event_log import EventLog
from policy_node.metrics import PolicyMetrics, SlaConfig
from policy_node.frames import FramePairing
from policy_node.policy.base import CameraFrame, Goal, Observation, Policy, goal_target
from policy_node.policy.compat import CameraNeed, RobotFacts, check_fit
from policy_node.policy.load import load_policy
from policy_node.policy.pixels import camera_specs
from policy_node.watchdog import Watchdog, WatchdogConfig
from roarm.joints import ROARM_M3
from schemas import messages_pb2, services_pb2
from schemas.foxglove import CameraCalibration

Severity = messages_pb2.Severity


class RobotUnavailable(Failed, RuntimeError):
    """The robot node did not answer ``info`` in time."""


class RobotMismatch(Failed, ValueError):
    """The policy was made for other joints, limits or another control period than this robot's."""


@dataclass(frozen=True)
class PolicyNodeConfig:
    """Everything the node needs; the same for every robot target by design."""

    source: str
    name: str = "policy"
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)
    metrics_file: Path | None = None
    events_file: Path | None = None
    robot_timeout_s: float = 30.0
    housekeeping_period_s: float = 1.0
    # Microseconds the loop looks for the next state without blocking before it blocks (bus/waiting.py; 0: never).
    spin_us: int = 0
    # Measure the loop's CPU time per phase into info.metrics cpu_us.* (bus/phases.py).
    phases: bool = False


class PolicyNode:
    def __init__(self, config: PolicyNodeConfig, endpoints: Endpoints, ctx: zmq.Context | None = None) -> None:
        self.config = config
        self.policy: Policy = load_policy(config.source)  # fail fast on a bad model, before any socket
        self.node = Node("policy", config.name, endpoints, info=self.describe, ctx=ctx)
        self.states = self.node.subscribe("robot", [JOINT_STATE])
        self.goals = self.node.subscribe("runner", [GOAL])
        self.frames = self._pair_frames(self.policy.requirements.cameras)
        self.watchdog = Watchdog(config.watchdog)
        self.metrics = PolicyMetrics(config.sla)
        self.events = EventLog(config.events_file, config.name)
        self.robot: services_pb2.NodeInfo | None = None
        self.goal: messages_pb2.Goal | None = None
        self.target: Goal | None = None  # the goal's Cartesian part, converted once per goal
        self._joints: tuple[str, ...] = ROARM_M3.names  # the robot's, once it said
        self._lower, self._upper = self._limits()
        self._command_seq = 0
        self._answered: tuple[int, tuple[float, ...]] | None = None  # (seq, positions) last answered
        self._last_command: messages_pb2.JointCommand | None = None
        self._next_housekeeping = 0.0
        self._holding = False  # holding because the robot went quiet
        self.phases = phase_clock(config.phases, ("wait", "receive", "observe", "act", "send", "bookkeeping"))

    def _pair_frames(self, needs: tuple[CameraNeed, ...]) -> FramePairing | None:
        """Subscriptions to the frames (raw and JPEG/PNG) and calibrations of the cameras the policy needs."""
        if not needs:
            return None
        cameras = [need.camera for need in needs]
        raw = self.node.subscribe_frames(cameras)
        compressed = self.node.subscribe_frames(cameras, compressed=True)
        calibrations = self.node.subscribe("camera", [calibration_topic(c) for c in cameras])
        known: dict[str, CameraCalibration] = {}

        def poll(timeout_ms: int) -> dict[str, Image]:
            images = raw.latest(timeout_ms)
            for camera, image in compressed.latest(0).items():
                if camera not in images or image.stamp_ns > images[camera].stamp_ns:
                    images[camera] = image
            return images

        def calibration(camera: str) -> CameraCalibration | None:
            for envelope in calibrations.drain():
                parts = camera_of(envelope.topic)
                if parts is not None:
                    known[parts[0]] = envelope.message  # type: ignore[assignment]
            return known.get(camera)

        return FramePairing(needs, poll, wait_s=self.config.watchdog.deadline_s, calibration=calibration)

    # -- start-up ---------------------------------------------------------------
    def connect_robot(self) -> services_pb2.NodeInfo | None:
        """The robot's info, asked until it answers (bounded), serving our own pings meanwhile.

        Returns None when stopped (signal, shutdown) while waiting. Raises
        RobotUnavailable after ``robot_timeout_s`` and RobotMismatch when the
        policy was made for other joints, limits or another period.
        """
        self.node.set_state("degraded", "waiting for the robot's info")
        client = NodeClient(self.node.ctx, self.node.endpoints["robot"].rep, self.config.name, timeout_s=0.5,
                            security=self.node.security)  # CURVE keys when the run uses them
        deadline = time.monotonic() + self.config.robot_timeout_s
        try:
            while self.node.running:
                self.node.spin(0)
                try:
                    info = client.info(retries=1)
                    break
                except ServiceUnavailable:
                    if time.monotonic() >= deadline:
                        raise RobotUnavailable(
                            f"the robot node at {client.endpoint} did not answer 'info' within "
                            f"{self.config.robot_timeout_s:g} s: start it (hil node sim|hw) with the same "
                            "--run-dir/--endpoints"
                        ) from None
                except (ServiceError, WrongReply) as exc:
                    raise RobotUnavailable(f"the robot node refused 'info': {exc}") from None
            else:
                return None
        finally:
            client.close()
        fit = check_fit(self.policy.requirements, RobotFacts.of_info(info))
        if not fit.ok:
            raise RobotMismatch("; ".join(fit.errors))
        for warning in fit.warnings:
            self.report(Severity.WARNING, "policy.fit", warning)
        if self.policy.requirements.period is None and info.dt > 0:
            # A scripted policy derives its speed from the robot's period and speed limits
            # (the real arm's node clamps below the servo's top speed); a Python one sees the period.
            self.policy = load_policy(self.config.source, dt=info.dt, max_velocity=tuple(info.max_velocity))
        self.robot = info
        if self.frames is not None:
            self.frames.specs = camera_specs(info.extra.get("cameras", ""))
        self._joints = tuple(info.joint_names)
        self.node.set_state("ok", f"driving {info.node or 'robot'} ({info.backend}, {info.mode or 'realtime'})")
        return info

    # -- the loop -----------------------------------------------------------------
    def run(self) -> None:
        """Connect, then answer states until shut down or signalled."""
        robot = self.connect_robot()
        if robot is None:
            return  # stopped before the robot answered: nothing was driven
        self.report(Severity.INFO, "policy.started", f"{self.policy.name} driving {robot.node}")
        gc.freeze()  # start-up objects (model, modules) never again slow a collection inside the loop
        node, goals, states, phases = self.node, self.goals, self.states, self.phases
        phases.skip()
        while node.running:
            node.spin(self._poll_ms(), self.config.spin_us)
            phases.mark("wait")
            # Only the sockets the poll found readable are read (no readiness
            # system call for the others); a message that came after the poll
            # wakes the next one at once.
            ready = node.ready
            if goals.socket in ready:
                for envelope in goals.drain():
                    self.goal = envelope.message  # type: ignore[assignment]
                    self.target = goal_target(self.goal)
            if states.socket in ready:
                fresh = self._fresh_states()
            elif self.watchdog.stale():
                waiting = states.drain()  # before holding, one look for a state that came after the poll
                fresh = waiting[-1] if waiting else None
            else:
                fresh = None
            phases.mark("receive")
            if fresh is not None:
                self.answer(fresh)
            elif self.watchdog.stale():
                self.hold_stale()
            self.housekeeping()
            phases.mark("bookkeeping")
        self.report(Severity.INFO, "policy.stopped", self.node.detail)

    def _fresh_states(self) -> Envelope | None:
        """The newest state waiting, after a poll said the state socket is readable.

        ``take`` reads the first without asking whether one waits; one
        readiness check then drains any queued behind it (the robot ran
        ahead), so the newest is answered, as before.
        """
        first = self.states.take()
        behind = self.states.drain()
        return behind[-1] if behind else first

    def answer(self, envelope: Envelope) -> None:
        """One command for one state: the policy's, or a hold if the watchdog objects."""
        state = envelope.message
        assert isinstance(state, messages_pb2.JointState)
        position = tuple(state.position)
        if not self._usable(state, position):
            return
        key = (int(state.seq), position)
        if key == self._answered and self._last_command is not None:
            self._send(self._last_command)  # the robot re-published the same state: same answer
            return
        if self._answered is not None and (state.seq < self._answered[0] or state.seq == 0):
            self.policy.reset()  # the robot was reset (its seq restarts at 0)
        images: dict[str, CameraFrame] = {}
        if self.frames is not None:
            pairing = self.frames.frames_for(state, self.robot.dt if self.robot is not None else 0.0)
            if not pairing.ok:
                self.watchdog.on_state(int(state.seq), np.fromiter(state.position, float, len(position)))
                self.hold_stale_frame(state, pairing.reason)
                return
            images = pairing.frames
        obs = Observation.from_state(state, self.goal, self.target, images)
        self.watchdog.on_state(obs.seq, obs.position)
        if self._holding:
            self._holding = False
            self.node.set_state("ok", f"robot state fresh again at state {obs.seq}")
        self.phases.mark("observe")
        started = time.perf_counter()
        try:
            target = np.asarray(self.policy.act(obs), dtype=float)
        except Exception as exc:  # noqa: BLE001 - a policy's bug must become a hold, not a dead node
            target = np.full(6, np.nan)
            self.report(Severity.ERROR, "policy.error", f"{type(exc).__name__}: {exc}", state.seq)
        elapsed = time.perf_counter() - started
        self.phases.mark("act")
        reason = self.watchdog.judge(target, elapsed)
        if reason is None:
            command = messages_pb2.JointCommand(obs_seq=state.seq, position=target.tolist())
        else:
            command = self.watchdog.hold_command(self._lower, self._upper)
            self.node.counters["deadline_miss"] += 1
            self.node.counters[f"watchdog.{reason}"] += 1
            detail = f"{elapsed * 1e6:.0f} us > {self.config.watchdog.budget_s * 1e6:.0f} us" \
                if reason == "budget_overrun" else f"output {np.round(target, 4).tolist()}"
            self.report(Severity.WARNING, f"watchdog.{reason}", f"hold at state {state.seq}: {detail}", state.seq)
        send_ns = self._send(command)
        self.phases.mark("send")
        self._answered, self._last_command = key, command
        self.metrics.record(envelope.recv_ns, state.stamp_ns, send_ns, elapsed, reason is not None)
        self.phases.step()

    def hold_stale_frame(self, state: messages_pb2.JointState, reason: str) -> None:
        """No camera frame fresh enough for this state: hold at its measured position instead of acting blind."""
        command = self.watchdog.hold_command(self._lower, self._upper)
        self.node.counters["deadline_miss"] += 1
        self.node.counters["watchdog.stale_frame"] += 1
        self.report(Severity.WARNING, "watchdog.stale_frame", f"hold at state {state.seq}: {reason}", state.seq)
        self._send(command)
        # Not remembered as this state's answer: the same state re-published with its frame gets a real one.
        self._answered, self._last_command = (int(state.seq), ()), None

    def hold_stale(self) -> None:
        """No fresh state within the deadline: hold the last measured position."""
        command = self.watchdog.hold_command(self._lower, self._upper)
        self.node.counters["deadline_miss"] += 1
        self.node.counters["watchdog.stale_state"] += 1
        self.report(Severity.WARNING, "watchdog.stale_state",
                    f"no robot state for {self.config.watchdog.deadline_s * 1e3:.0f} ms after state "
                    f"{command.obs_seq}: holding", command.obs_seq)
        self._send(command)
        self.metrics.record_stale_hold()
        self._holding = True
        self.node.set_state("degraded", f"no fresh robot state since state {command.obs_seq}: holding")

    def housekeeping(self) -> None:
        """Once per period: SLA alerts and the Prometheus textfile."""
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.config.housekeeping_period_s
        for alert in self.metrics.alerts(now):
            self.report(Severity.WARNING, alert.code, alert.text, self.watchdog.last_seq or 0)
        if self.config.metrics_file is not None:
            try:
                self.metrics.write_textfile(self.config.metrics_file, self.config.name)
            except OSError as exc:  # a full disk or a removed folder must not stop the arm's controller
                self.report(Severity.WARNING, "metrics.write_failed", f"{self.config.metrics_file}: {exc}")

    # -- helpers ------------------------------------------------------------------
    def _usable(self, state: messages_pb2.JointState, position: tuple[float, ...]) -> bool:
        """A state the policy can act on; anything else is counted, reported and dropped."""
        joints = self._joints
        problem = ""
        if state.names and tuple(state.names) != joints:
            problem = f"joint order {list(state.names)}, expected {list(joints)}"
        elif len(position) != len(joints):
            problem = f"{len(position)} positions for {len(joints)} joints"
        elif not all(map(math.isfinite, position)):
            problem = f"non-finite positions {list(position)}"
        if problem:
            self.node.counters["reject.bad_state"] += 1
            self.report(Severity.WARNING, "reject.bad_state", f"state {state.seq} ignored: {problem}", state.seq)
            return False
        return True

    def _send(self, command: messages_pb2.JointCommand) -> int:
        self._command_seq += 1
        send_ns = time.monotonic_ns()
        command.seq = self._command_seq
        command.stamp_ns = send_ns
        self.node.publish(JOINT_COMMAND, command, sent_ns=send_ns)
        self.node.counters["commands"] += 1
        return send_ns

    def _poll_ms(self) -> int:
        wait = min(self.watchdog.until_stale(), max(0.0, self._next_housekeeping - time.monotonic()), 0.05)
        return max(1, int(wait * 1000))

    def report(self, severity: int, code: str, text: str, obs_seq: int = 0) -> None:
        """An event on the bus (rate-limited) and in the JSONL file (every one)."""
        self.node.event(severity, code, text, correlation_seq=obs_seq)
        self.events.write(severity, code, text, obs_seq)

    def _limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Per bus joint: the policy's limits where it states them, else the RoArm-M3's (hold commands clamp to them)."""
        lower, upper = np.asarray(ROARM_M3.lower), np.asarray(ROARM_M3.upper)
        req = self.policy.requirements
        if req.lower is not None and req.upper is not None:
            index = [ROARM_M3.names.index(name) for name in req.joints]
            lower[index], upper[index] = req.lower, req.upper
        return lower, upper

    def describe(self) -> services_pb2.NodeInfo:
        """``joint_names``/``lower``/``upper``: what the node commands (all six, bus order); ``dt``: the
        policy's period, 0 when it runs at any; ``extra``: the joints it drives and its description."""
        req = self.policy.requirements
        info = services_pb2.NodeInfo(
            backend=self.policy.name,
            joint_names=list(ROARM_M3.names),
            lower=self._lower.tolist(),
            upper=self._upper.tolist(),
            max_velocity=list(ROARM_M3.max_velocity),
            dt=req.period or 0.0,
            model_hash=self.policy.model_hash,
        )
        info.extra["policy_joints"] = ",".join(req.joints)
        info.extra["limits_stated"] = "yes" if req.lower is not None else "no"
        info.extra["goal_kinds"] = ",".join(sorted(req.goal_kinds))
        desc = getattr(self.policy, "description", None)
        if desc is not None:
            info.extra["observation"] = ",".join(term.name for term in desc.observation)
            info.extra["action_mode"] = desc.action.mode
            info.extra["description"] = desc.source
        info.extra["source"] = self.config.source
        if req.cameras:
            info.extra["cameras"] = ",".join(f"{need.camera}:{need.max_age_s * 1e3:g}ms" for need in req.cameras)
            if self.frames is not None:
                info.metrics["frames_waited"] = float(self.frames.waited)
        info.extra["deadline_ms"] = f"{self.config.watchdog.deadline_s * 1e3:g}"
        # The goal the next state is answered with: a runner waits for it before a reset (scenarios/runner.py).
        info.extra["goal_seq"] = "" if self.goal is None else str(self.goal.seq)
        info.extra["budget_us"] = f"{self.config.watchdog.budget_s * 1e6:g}"
        if self.robot is not None:
            info.extra["robot"] = self.robot.node
            info.extra["robot_backend"] = self.robot.backend
        info.metrics.update(self.metrics.as_metrics())
        info.metrics.update(self.phases.as_metrics())
        if self.phases.steps:
            info.extra["phases"] = self.phases.order
        return info

    def close(self) -> None:
        """Last textfile and heartbeat, then sockets; safe after a failed start."""
        if self.config.metrics_file is not None:
            try:
                self.metrics.write_textfile(self.config.metrics_file, self.config.name)
            except OSError as exc:
                print(f"[{self.config.name}] cannot write {self.config.metrics_file}: {exc}", file=sys.stderr)
        self.events.close()
        self.node.close()
