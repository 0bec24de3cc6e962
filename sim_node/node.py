"""The sim node: a simulated RoArm-M3 on the bus (role ``robot``).

One loop per mode, each readable top to bottom (docs/contracts.md):

- lockstep: publish state k, wait for the command with obs_seq == k (until
  the deadline), apply it, advance one control period, publish k + 1. Before
  the first matching command after a reset, a missed deadline re-publishes
  state k (the policy may still be joining); after it, a missed deadline
  holds the last command and counts ``deadline_miss``. Paused until the
  first ``reset`` unless autostarted. Deterministic for a seed.
- realtime: one control period per ``dt`` of wall clock; the newest command
  wins; no command means the last target is held.

Services beyond ping/info/shutdown: reset, step (lockstep only), estop.
Every command goes through roarm.safety.check_command: rejected ones are
counted as ``command.<reason>`` and reported as rate-limited node/events,
clamps are counted and reported too; the node never stops on bad input.
"""

from __future__ import annotations

import gc
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from google.protobuf.message import Message

from bus.endpoints import Endpoints
from bus.latency import LatencyStats
from bus.node import Node
from bus.topics import CLOCK, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.joints import LOWER, MAX_VELOCITY, NAMES, UPPER, pose
from roarm.safety import BadCommand, check_command, order_targets
from schemas import messages_pb2, services_pb2
from sim_node.backend import SimBackend
from sim_node.backends import make_backend
from sim_node.randomization import check_ranges, randomization_hash, sample

Severity = messages_pb2.Severity
MODES = ("lockstep", "realtime")
MAX_STEPS_PER_CALL = 10_000  # a step call holds the REP socket (and ping); bound it
SPIN_S = 0.0002  # realtime: the last stretch before a tick is a busy wait


@dataclass
class SimConfig:
    """How to run the sim node; the CLI fills it from its options."""

    backend: str = "mujoco"
    mode: str = "lockstep"
    dt: float = 0.01
    deadline_s: float = 0.1
    autostart: bool = False
    seed: int = 0
    name: str = "sim"
    heartbeat_period_s: float = 0.5
    # Realtime mode: SCHED_FIFO priority of the loop's thread (0 = normal scheduling).
    rt_priority: int = 0
    backend_options: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"dt must be a positive number of seconds, got {self.dt}")
        if not (self.deadline_s > 0 and math.isfinite(self.deadline_s)):
            raise ValueError(f"deadline must be positive, got {self.deadline_s} s")


def raise_priority(priority: int) -> tuple[int, str, str] | None:
    """SCHED_FIFO for the calling thread (and threads it starts later), if asked.

    On a busy machine a realtime tick is otherwise late whenever another
    process holds the core. Refusal (no CAP_SYS_NICE, not Linux) leaves the
    node at normal priority. Returns the event to report, None if not asked.
    """
    if priority <= 0:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        return Severity.WARNING, "rt_priority_refused", f"SCHED_FIFO {priority} refused ({exc}); normal priority"
    return Severity.INFO, "rt_priority", f"loop and ZMQ I/O thread run at SCHED_FIFO priority {priority}"


class SimNode:
    """A SimBackend on the bus as the run's robot: the loops, the services, the checks."""

    def __init__(self, config: SimConfig, endpoints: Endpoints, backend: SimBackend | None = None) -> None:
        self.config = config
        self.dt = config.dt
        # Load the simulator before binding: once the node answers ping it is ready.
        self.backend = backend or make_backend(config.backend, dt=config.dt, **config.backend_options)
        self.backend.connect()
        # Before the first socket: ZMQ's I/O thread, created with it, inherits the priority.
        priority = raise_priority(config.rt_priority) if config.mode == "realtime" else None
        self.node = Node("robot", config.name, endpoints, info=self.describe,
                         heartbeat_period_s=config.heartbeat_period_s)
        if priority is not None:
            self.node.event(*priority)
        policy = QueuePolicy.QUEUE if config.mode == "lockstep" else QueuePolicy.LATEST
        self.commands = self.node.subscribe("policy", [JOINT_COMMAND], policy=policy)
        self.node.add_service("reset", services_pb2.ResetRequest, self._on_reset)
        self.node.add_service("step", services_pb2.StepRequest, self._on_step)
        self.node.add_service("estop", services_pb2.EstopRequest, self._on_estop)
        self.k = 0  # control step since the last reset (JointState.seq)
        self.target = pose("home")
        self.applied = services_pb2.Randomization()
        self.applied_hash = ""
        self.paused = True
        self.joined = False  # a command answered a state since the last reset
        self.estop = False
        self.epoch = 0  # bumped by reset/step: a lockstep wait in progress is void
        self.total_steps = 0
        self.physics = LatencyStats()
        self.answer = LatencyStats()  # lockstep: state published -> matching command
        self.period = LatencyStats()  # realtime: wall time between control steps
        self.jitter = LatencyStats()  # realtime: |period - dt|
        self._published_ns = 0

    # -- the loops --------------------------------------------------------------
    def run(self) -> None:
        """Run until shutdown or a signal; always closes the backend and sockets."""
        try:
            if self.config.mode == "realtime" or self.config.autostart:
                self.reset(pose("home"), self.config.seed, None)
            if self.config.mode == "lockstep":
                self._run_lockstep()
            else:
                gc.freeze()  # everything allocated at start-up: later collections skip it
                self._run_realtime()
        finally:
            self.backend.close()
            self.node.close()

    def _run_lockstep(self) -> None:
        while self.node.running:
            if self.paused:
                self.node.spin(50)
                continue
            self.publish_state()
            answered = self._wait_for_answer(self.k)
            if answered is None:
                continue  # reset or step service moved k: publish the new state
            if answered:
                self.joined = True
            elif not self.joined:
                continue  # the policy may still be joining: re-publish state k
            else:
                self.node.counters["deadline_miss"] += 1
                self.node.event(Severity.WARNING, "deadline_miss",
                                f"no command for state {self.k} within {self.config.deadline_s * 1000:.0f} ms; "
                                "holding the last command", self.k)
            self.advance()

    def _wait_for_answer(self, k: int) -> bool | None:
        """True on the command answering state k, False at the deadline, None
        when a service call (reset, step) changed the state being answered."""
        epoch = self.epoch
        deadline = time.monotonic() + self.config.deadline_s
        while self.node.running:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            has_input = self.node.spin(max(1, math.ceil(remaining * 1000)))
            if self.epoch != epoch or self.paused:
                return None
            if not has_input:
                continue
            # recv(0) until empty rather than drain(): no exception per wake-up on the hot path
            envelope = self.commands.recv(0)
            while envelope is not None:
                command = envelope.message
                assert isinstance(command, messages_pb2.JointCommand)
                if command.obs_seq == k:
                    self.answer.add((time.monotonic_ns() - self._published_ns) / 1e9)
                    self.accept(command)
                    return True
                self.node.counters["stale_command"] += 1
                envelope = self.commands.recv(0)
        return None

    def _run_realtime(self) -> None:
        next_tick = time.monotonic()
        last_tick = 0.0
        self.publish_state()
        while self.node.running:
            epoch = self.epoch
            newest = self._serve_until(next_tick)
            if newest is not None and self.epoch == epoch:  # a command from before a reset is void
                self.accept(newest)
            now = time.monotonic()
            if last_tick:
                self.period.add(now - last_tick)
                self.jitter.add(abs(now - last_tick - self.dt))
            last_tick = now
            self.advance()
            self.publish_state()
            next_tick += self.dt
            if now - next_tick > self.dt:  # fell more than a period behind: do not race to catch up
                self.node.counters["overrun"] += 1
                next_tick = now + self.dt

    def _serve_until(self, tick: float) -> messages_pb2.JointCommand | None:
        """Serve services and collect commands until ``tick``; the newest command.

        Sleeps in the poller until about a millisecond before the tick (poll
        timeouts have whole-millisecond resolution), polls without blocking
        until SPIN_S before it, then spins on the clock alone: the period
        jitter target is under a millisecond.
        """
        newest: messages_pb2.JointCommand | None = None
        while self.node.running:
            remaining = tick - time.monotonic()
            if remaining <= SPIN_S:
                break
            if self.node.spin(max(0, int(remaining * 1000) - 1)):
                for envelope in self.commands.drain():
                    assert isinstance(envelope.message, messages_pb2.JointCommand)
                    newest = envelope.message
        while time.monotonic() < tick:
            pass
        return newest

    # -- one control period -------------------------------------------------------
    def accept(self, command: messages_pb2.JointCommand) -> None:
        """Check a command and make it the target; bad ones are counted, never raised."""
        if self.estop:
            self.node.counters["command.estop_ignored"] += 1
            self.node.event(Severity.WARNING, "command.estop_ignored",
                            "emergency stop engaged: holding position, commands ignored", command.obs_seq)
            return
        try:
            max_velocity = MAX_VELOCITY
            if len(command.velocity):
                limits = np.abs(order_targets(command.names, command.velocity))
                max_velocity = np.minimum(MAX_VELOCITY, limits)
            checked = check_command(command.names, command.position, self.target, self.dt,
                                    max_velocity=max_velocity)
        except BadCommand as bad:
            self.node.counters[f"command.{bad.reason}"] += 1
            self.node.event(Severity.WARNING, f"command.{bad.reason}", f"rejected command: {bad.detail}",
                            command.obs_seq)
            return
        for reason, happened in (("clamped_limits", checked.clamped_limits),
                                 ("clamped_speed", checked.clamped_speed)):
            if happened:
                self.node.counters[f"command.{reason}"] += 1
                self.node.event(Severity.INFO, f"command.{reason}",
                                f"command {command.seq} {reason.replace('_', ' to ')}", command.obs_seq)
        self.target = checked.target

    def advance(self) -> None:
        """Apply the current target and run one control period of physics."""
        self.backend.apply_command(self.target)
        start = time.perf_counter()
        self.backend.step()
        self.physics.add(time.perf_counter() - start)
        self.k += 1
        self.total_steps += 1

    def joint_state(self) -> messages_pb2.JointState:
        """State k as it goes on the wire; the TCP is FK of the measured joints (contract)."""
        state = self.backend.read_state()
        return messages_pb2.JointState(
            stamp_ns=time.monotonic_ns(),
            seq=self.k,
            names=NAMES,
            position=state.position.tolist(),  # lists fill repeated fields faster than arrays
            velocity=state.velocity.tolist(),
            effort=state.effort.tolist(),
            sim_time=self.k * self.dt,
            randomization_hash=self.applied_hash,
            trusted=True,
            tcp=state.tcp.tolist(),
        )

    def publish_state(self) -> None:
        """Publish state k and the matching sim/clock; remember when, for the answer latency."""
        message = self.joint_state()
        self._published_ns = message.stamp_ns
        self.node.publish(JOINT_STATE, message, message.stamp_ns)
        self.node.publish(CLOCK, messages_pb2.Clock(stamp_ns=message.stamp_ns, step=self.k, sim_time=message.sim_time))

    # -- services -----------------------------------------------------------------
    def reset(self, position: np.ndarray, seed: int, ranges: services_pb2.RandomizationRanges | None) -> None:
        """Restart at step 0 with freshly sampled physics; voids a lockstep wait in progress.

        An engaged emergency stop stays engaged: the arm holds the reset pose.
        """
        self.applied = sample(ranges, seed)
        self.applied_hash = randomization_hash(self.applied)
        self.backend.reset(position, seed, self.applied)
        self.target = position.copy()
        self.k = 0
        self.joined = False
        self.paused = False
        self.epoch += 1
        if self.estop:
            self.target = self.backend.read_state().position.copy()

    def _on_reset(self, request: Message) -> services_pb2.ResetReply:
        assert isinstance(request, services_pb2.ResetRequest)
        if len(request.position) == 0:
            position = pose("home")
        else:
            position = np.asarray(request.position, dtype=float)
            if position.shape != (len(NAMES),) or not np.all(np.isfinite(position)):
                raise self.node.refuse(f"reset position needs {len(NAMES)} finite values in order {list(NAMES)}, "
                                       f"got {list(request.position)}")
            outside = [n for n, v, lo, hi in zip(NAMES, position, LOWER, UPPER) if not lo <= v <= hi]
            if outside:
                raise self.node.refuse(f"reset position outside the joint limits for {outside} "
                                       f"(lower {LOWER.round(4).tolist()}, upper {UPPER.round(4).tolist()})")
        ranges = request.randomization if request.HasField("randomization") else None
        if ranges is not None:
            try:
                check_ranges(ranges)
            except ValueError as exc:
                raise self.node.refuse(str(exc)) from None
        self.reset(position, request.seed, ranges)
        return services_pb2.ResetReply(state=self.joint_state(), applied=self.applied,
                                       randomization_hash=self.applied_hash)

    def _on_step(self, request: Message) -> services_pb2.StepReply:
        assert isinstance(request, services_pb2.StepRequest)
        if self.config.mode != "lockstep":
            raise self.node.refuse("step is a lockstep service; this node runs in realtime mode")
        if self.paused:
            raise self.node.refuse("the simulation starts with reset: call reset first (or run with --autostart)")
        if request.steps > MAX_STEPS_PER_CALL:
            raise self.node.refuse(f"at most {MAX_STEPS_PER_CALL} steps per call, asked for {request.steps}")
        for _ in range(request.steps):
            self.advance()
        if request.steps:
            self.epoch += 1
        return services_pb2.StepReply(state=self.joint_state())

    def _on_estop(self, request: Message) -> services_pb2.Ack:
        assert isinstance(request, services_pb2.EstopRequest)
        if request.engage:
            self.estop = True
            self.target = self.backend.read_state().position.copy()
            self.node.set_state("degraded", "emergency stop engaged")
            self.node.event(Severity.ERROR, "estop", "emergency stop engaged: holding the current position")
            return services_pb2.Ack(ok=True, text="emergency stop engaged: holding position, commands ignored")
        self.estop = False
        self.node.set_state("ok")
        self.node.event(Severity.WARNING, "estop_cleared", "emergency stop cleared")
        return services_pb2.Ack(ok=True, text="emergency stop cleared")

    def describe(self) -> services_pb2.NodeInfo:
        info = services_pb2.NodeInfo(
            backend=self.backend.name,
            joint_names=NAMES,
            lower=LOWER,
            upper=UPPER,
            max_velocity=MAX_VELOCITY,
            dt=self.dt,
            mode=self.config.mode,
            model_hash=self.backend.model_hash,
            randomization_hash=self.applied_hash,
        )
        info.extra.update(self.backend.physics_info)
        info.extra.update({"paused": str(self.paused).lower(), "estop": str(self.estop).lower(),
                           "deadline_ms": f"{self.config.deadline_s * 1000:g}"})
        info.metrics.update({"step": float(self.k), "steps": float(self.total_steps),
                             "deadline_miss": float(self.node.counters["deadline_miss"])})
        info.metrics.update(self.physics.total().as_dict("physics_"))
        if self.config.mode == "lockstep":
            info.metrics.update(self.answer.total().as_dict("answer_"))
        else:
            info.metrics.update(self.period.total().as_dict("period_"))
            info.metrics.update(self.jitter.total().as_dict("jitter_"))
        return info
