"""The sim node: a simulated RoArm-M3 on the bus (role ``robot``).

One loop per mode, each a sequence of events read top to bottom, as a
dora node reads its inputs (docs/contracts.md). The events are a joint
command, a call of reset, step or estop (methods without callbacks: the loop
answers them between control periods, never in the middle of one), and the
deadline the loop waits for:

- lockstep: state k is published and the loop waits for the command with
  obs_seq == k until the deadline; that command is applied, one control
  period runs, state k + 1 is published. Before the first matching command
  after a reset, a missed deadline re-publishes state k (the policy may
  still be joining); after it, a missed deadline holds the last command and
  counts ``deadline_miss``. reset publishes state 0, step the state it leads
  to. Paused until the first ``reset`` unless autostarted. Deterministic for
  a seed. A step limit (the ``limit`` service) stops the loop at a given
  state: the command answering it is kept until the limit is raised (a
  reset drops it), so a runner ends an episode at a step of its choosing.
- realtime: the deadline is the next tick, one control period per ``dt`` of
  wall clock; the newest command wins; no command means the last target is
  held.

Every command is judged by roarm.robot_role (as on the real arm): rejected
ones are counted as ``command.<reason>`` and reported as rate-limited
node/events, clamps are counted and reported too; the node never stops on
bad input.

Cameras (``SimConfig.cameras``): the node also binds the camera role's PUB
and publishes a frame of each camera due at step k (k % every == 0; the
states it publishes, not the steps a ``step`` call skips), stamped with
state k's stamp and carrying step k (roarm.camera_role). In lockstep every
frame of step k is rendered and published *before* state k, so a policy
acting on state k already has its frame; in realtime state k goes out on
time and its frames right after it. The ``scene`` service (and
``ResetRequest.scene``) places the scene's objects (sim_node.backend).
"""

from __future__ import annotations

import gc
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from google.protobuf.message import Message

from bus.decimate import CLOCK_EVERY_LOCKSTEP, Every
from bus.endpoints import Endpoints
from bus.frames import FramePublisher
from bus.latency import LatencyStats
from bus.node import Node
from bus.phases import phase_clock
from bus.service import Request
from bus.topics import CLOCK, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.camera import CameraSpec
from roarm.camera_role import CameraRole, Shot
from roarm.joints import LOWER, MAX_VELOCITY, NAMES, ROARM_M3, UPPER, pose
from roarm.robot_role import RobotRole
from schemas import messages_pb2, services_pb2
from sim_node.backend import UPRIGHT, Placement, SceneError, SimBackend
from sim_node.backends import make_backend
from sim_node.randomization import check_ranges, randomization_hash, sample

Severity = messages_pb2.Severity
MODES = ("lockstep", "realtime")
NO_LIMIT = 2**63  # the step limit of a started robot: none
MAX_STEPS_PER_CALL = 10_000  # a step call holds the REP socket (and ping); bound it
SPIN_S = 0.0002  # realtime: the last stretch before a tick is a busy wait
IDLE_S = 0.05  # the longest single wait (heartbeats stay on time while paused)
IDLE_MS = int(IDLE_S * 1000)
WAKE_MARGIN_MS = 0.8


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
    # Cameras to render (roarm.camera); none: the node binds no camera socket.
    cameras: tuple[CameraSpec, ...] = ()
    # sim/clock on every n-th step (bus/decimate.py; 0 = never); None: 10 in lockstep, 1 in realtime.
    clock_every: int | None = None
    # Lockstep: microseconds the loop looks for the answer without blocking before it blocks
    # (bus/waiting.py; 0 = never). Realtime ends each wait with its own busy wait (SPIN_S).
    spin_us: int = 0
    # Lockstep: measure the loop's CPU time per phase into info.metrics cpu_us.* (bus/phases.py).
    phases: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"dt must be a positive number of seconds, got {self.dt}")
        if not (self.deadline_s > 0 and math.isfinite(self.deadline_s)):
            raise ValueError(f"deadline must be positive, got {self.deadline_s} s")
        if self.spin_us < 0:
            raise ValueError(f"spin must be >= 0 microseconds (0 = never), got {self.spin_us}")
        if self.clock_every is not None and self.clock_every < 0:
            raise ValueError(f"clock every must be >= 0 steps (0 = never), got {self.clock_every}")


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


class Wake(Enum):
    """What ends a wait of the loop besides a service call or a command."""

    DEADLINE = "deadline"  # the time the loop waited for has come
    STOP = "stop"  # shutdown service or a signal


class SimNode:
    """A SimBackend on the bus as the run's robot: one loop, its events, the checks."""

    def __init__(self, config: SimConfig, endpoints: Endpoints, backend: SimBackend | None = None) -> None:
        self.config = config
        self.dt = config.dt
        self.lockstep = config.mode == "lockstep"
        # Load the simulator before binding: once the node answers ping it is ready.
        options = {**config.backend_options, **({"cameras": config.cameras} if config.cameras else {})}
        self.backend = backend or make_backend(config.backend, dt=config.dt, **options)
        self.backend.connect()
        # Before the first socket: ZMQ's I/O thread, created with it, inherits the priority.
        priority = raise_priority(config.rt_priority) if config.mode == "realtime" else None
        self.node = Node("robot", config.name, endpoints, info=self.describe,
                         heartbeat_period_s=config.heartbeat_period_s)
        if priority is not None:
            self.node.event(*priority)
        self.role = RobotRole(self.node, ROARM_M3, MAX_VELOCITY)
        policy = QueuePolicy.QUEUE if self.lockstep else QueuePolicy.LATEST
        self.commands = self.node.subscribe("policy", [JOINT_COMMAND], policy=policy)
        # No handlers: reset, step and estop are events of the loop (on_request), never callbacks.
        self.handlers: dict[str, Callable[[Message], Message]] = {
            "reset": self.on_reset, "step": self.on_step, "estop": self.on_estop}
        self.node.add_service("reset", services_pb2.ResetRequest)
        self.node.add_service("step", services_pb2.StepRequest)
        self.node.add_service("estop", services_pb2.EstopRequest)
        self.handlers["scene"] = self.on_scene
        self.node.add_service("scene", services_pb2.SceneRequest)
        self.handlers["limit"] = self.on_limit
        self.node.add_service("limit", services_pb2.LimitRequest)
        # Frames go out on the camera role's own PUB (16 frames queued per subscriber: bus/frames.py).
        self.cameras: tuple[CameraSpec, ...] = self.backend.cameras
        self.frames: CameraRole | None = None
        if self.cameras:
            publisher = FramePublisher(self.node.ctx, endpoints["camera"].pub, config.name,
                                       security=endpoints.security_for("camera"))
            self.frames = CameraRole(publisher, self.cameras)
        self.render_time = LatencyStats()  # one camera's frame: render (and encode) to publish
        # sim/clock repeats JointState's sim_time and seq: in lockstep every 10th step is plenty.
        default_every = CLOCK_EVERY_LOCKSTEP if self.lockstep else 1
        self.clock_every = Every(default_every if config.clock_every is None else config.clock_every)
        self.spin_us = config.spin_us if self.lockstep else 0
        self.k = 0  # control step since the last reset (JointState.seq)
        self.target = pose("home")
        self.applied = services_pb2.Randomization()
        self.applied_hash = ""
        self.paused = True
        self.joined = False  # lockstep: a command answered a state since the last reset
        self.limit = NO_LIMIT  # lockstep: the last state commands may lead to (the limit service)
        self.kept: messages_pb2.JointCommand | None = None  # lockstep: the answer to state ``limit``
        self.estop = False
        # lockstep: when the wait for the answer to state k ends (none while paused);
        # realtime: when the next control period starts.
        self.deadline = math.inf
        self.newest: messages_pb2.JointCommand | None = None  # realtime: the command for the next period
        self.total_steps = 0
        self.physics = LatencyStats()
        self.answer = LatencyStats()  # lockstep: state published -> matching command
        self.period = LatencyStats()  # realtime: wall time between control steps
        self.jitter = LatencyStats()  # realtime: |period - dt|
        self._published_ns = 0
        self._last_tick = 0.0
        self._clock = messages_pb2.Clock()
        self.phases = phase_clock(config.phases, ("wait", "receive", "check", "physics", "state", "publish"))

    # -- the loop -----------------------------------------------------------------
    def run(self) -> None:
        """Run until shutdown or a signal; always closes the backend and sockets."""
        try:
            if not self.lockstep or self.config.autostart:
                self.reset(pose("home"), self.config.seed, None)
            gc.freeze()  # everything allocated at start-up: later collections skip it
            self.phases.skip()
            if self.lockstep:
                self._run_lockstep()
            else:
                self._run_realtime()
        finally:
            self.backend.close()
            if self.frames is not None:
                self.frames.publisher.close()
            self.node.close()

    def _run_lockstep(self) -> None:
        """State k is out; each event either answers it, changes it, or waits on."""
        while True:
            match self.next_event(self.deadline):
                case messages_pb2.JointCommand() as command:
                    self.on_command(command)
                case Request():
                    self.node.answer(self.on_request)  # reset and step publish the state they lead to
                case Wake.DEADLINE:
                    self.on_deadline()
                case Wake.STOP:
                    return

    def _run_realtime(self) -> None:
        """One control period per dt of wall clock; the newest command wins."""
        self.deadline = time.monotonic()
        while True:
            match self.next_event(self.deadline - SPIN_S):
                case messages_pb2.JointCommand() as command:
                    self.newest = command
                case Request():
                    self.node.answer(self.on_request)  # reset drops self.newest: it was for the old episode
                case Wake.DEADLINE:
                    self.on_tick()
                case Wake.STOP:
                    return

    def next_event(self, until: float) -> Request | messages_pb2.JointCommand | Wake:
        """What the loop handles next: a call of reset, step or estop, a joint
        command, Wake.DEADLINE once ``until`` (monotonic seconds) has come, or
        Wake.STOP. Ping, info and shutdown are answered on the way (they read
        the node or stop it; they change nothing the loop holds)."""
        node = self.node
        spin_us = self.spin_us
        while node.running:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return Wake.DEADLINE
            # Poll timeouts are whole milliseconds and wake-ups come late: sleep
            # until at least WAKE_MARGIN_MS before ``until``, poll without
            # blocking after that, so the time is never overslept.
            has_input = node.spin(IDLE_MS if remaining > IDLE_S else max(0, int(remaining * 1000 - WAKE_MARGIN_MS)),
                                  spin_us)
            self.phases.mark("wait")
            if node.request is not None:
                return node.request
            if has_input and self.commands.socket in node.ready:
                # The poll said the socket is readable: take() reads without asking again.
                envelope = self.commands.take()
                self.phases.mark("receive")
                if envelope is not None:
                    message = envelope.message
                    assert isinstance(message, messages_pb2.JointCommand)
                    return message
        return Wake.STOP

    # -- lockstep events ------------------------------------------------------------
    def on_command(self, command: messages_pb2.JointCommand) -> None:
        """The command answering state k: apply it, advance, publish k + 1. Any other is stale."""
        # At the step limit the first answer to state k is kept; a second one (a policy whose
        # watchdog held while the limit stood) is as stale as it would be had the robot moved on.
        if command.obs_seq != self.k or self.paused or self.kept is not None:
            self.node.counters["stale_command"] += 1
            return
        self.answer.add((time.monotonic_ns() - self._published_ns) / 1e9)
        self.joined = True
        if self.k >= self.limit:
            self.keep(command)
            return
        self.accept(command)
        self.phases.mark("check")
        self.advance()
        self.phases.mark("physics")
        self.publish_state()
        self.phases.step()

    def on_deadline(self) -> None:
        """No answer to state k in time: publish it again until the policy has
        joined, after that hold the last command and advance."""
        if self.joined:
            if self.k >= self.limit:  # at the step limit: wait for it to rise, no miss
                self.deadline = math.inf
                return
            self.node.counters["deadline_miss"] += 1
            self.node.event(Severity.WARNING, "deadline_miss",
                            f"no command for state {self.k} within {self.config.deadline_s * 1000:.0f} ms; "
                            "holding the last command", self.k)
            self.advance()
        self.publish_state()

    def keep(self, command: messages_pb2.JointCommand) -> None:
        """State k is the last one allowed: keep its answer until the limit rises."""
        self.kept = command
        self.deadline = math.inf

    def on_limit(self, request: Message) -> services_pb2.Ack:
        """Set the step limit; raised past k, the kept answer to state k is applied now (lockstep)."""
        assert isinstance(request, services_pb2.LimitRequest)
        if not self.lockstep:
            raise self.node.refuse("limit is a lockstep service; this node runs in realtime mode")
        self.limit = NO_LIMIT if request.off else int(request.last_step)
        if self.k < self.limit and not self.paused:
            if self.kept is not None:
                command, self.kept = self.kept, None
                self.accept(command)
                self.advance()
                self.publish_state()
            elif self.deadline == math.inf:  # was waiting at the limit: the policy's wait starts again
                self.deadline = time.monotonic() + self.config.deadline_s
        return services_pb2.Ack(ok=True, text=f"step limit {'off' if request.off else self.limit}, at step {self.k}")

    # -- realtime events ------------------------------------------------------------
    def on_tick(self) -> None:
        """The start of a control period: apply the newest command, advance, publish."""
        while time.monotonic() < self.deadline:  # the last SPIN_S: a busy wait, for sub-ms jitter
            pass
        if self.newest is not None:
            self.accept(self.newest)
            self.newest = None
        now = time.monotonic()
        if self._last_tick:
            self.period.add(now - self._last_tick)
            self.jitter.add(abs(now - self._last_tick - self.dt))
        self._last_tick = now
        self.advance()
        self.publish_state()
        self.deadline += self.dt
        if now - self.deadline > self.dt:  # fell more than a period behind: do not race to catch up
            self.node.counters["overrun"] += 1
            self.deadline = now + self.dt

    # -- one control period -----------------------------------------------------------
    def accept(self, command: messages_pb2.JointCommand) -> None:
        """Check a command and make it the target; bad ones are counted, never raised."""
        checked = self.role.check(command, self.target, self.dt, "estop" if self.estop else "")
        if checked is not None:
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
        position, velocity, effort, tcp = self.backend.read_floats()
        return self.role.joint_state(time.monotonic_ns(), self.k, position, velocity, effort, tcp,
                                     self.k * self.dt, self.applied_hash)

    def publish_state(self) -> messages_pb2.JointState:
        """Publish state k and, on a step ``--clock-every`` says, the matching sim/clock; in lockstep the
        wait for its answer starts.

        Frames due at k: in lockstep rendered first and published before the
        state (the state's envelope then carries its real send time, after
        theirs); in realtime published after it, so the state is on time.
        """
        lockstep_shots = self.render_due() if self.lockstep else []
        message = self.joint_state()
        self.phases.mark("state")
        stamp_ns = message.stamp_ns
        self._published_ns = stamp_ns
        for shot in lockstep_shots:
            self.frames.publish(shot, stamp_ns, self.k)  # type: ignore[union-attr]
        self.node.publish(JOINT_STATE, message, None if lockstep_shots else stamp_ns)
        if not self.lockstep and self.frames is not None:
            for shot in self.render_due():
                self.frames.publish(shot, stamp_ns, self.k)
        if self.clock_every.due(self.k):
            clock = self._clock
            clock.stamp_ns = stamp_ns
            clock.step = self.k
            clock.sim_time = message.sim_time
            self.node.publish(CLOCK, clock, stamp_ns)
        if self.lockstep:
            self.deadline = stamp_ns / 1e9 + self.config.deadline_s
        self.phases.mark("publish")
        return message

    def render_due(self) -> list[Shot]:
        """Each camera's view of the current state, for those due at step k."""
        if self.frames is None:
            return []
        shots = []
        for spec in self.cameras:
            if spec.due(self.k):
                start = time.perf_counter()
                shot = self.frames.shot(spec.name)
                self.backend.render(spec.name, shot.pixels)
                self.render_time.add(time.perf_counter() - start)
                shots.append(shot)
        return shots

    # -- services (events of the loop) ----------------------------------------------------
    def on_request(self, request: Request) -> Message:
        return self.handlers[request.method](request.message)

    def place(self, objects: Sequence[services_pb2.SceneObject]) -> None:
        """Move scene objects; a bad one refuses the whole call (nothing moves)."""
        placements = [Placement(o.name, tuple(o.position), tuple(o.quat) or UPRIGHT, o.hidden) for o in objects]
        try:
            self.backend.place(placements)
        except SceneError as exc:
            raise self.node.refuse(str(exc)) from None

    def scene_reply(self) -> services_pb2.SceneReply:
        return services_pb2.SceneReply(objects=[
            services_pb2.SceneObject(name=p.name, hidden=p.hidden, position=[] if p.hidden else p.position,
                                     quat=[] if p.hidden else p.quat) for p in self.backend.scene.values()])

    def on_scene(self, request: Message) -> services_pb2.SceneReply:
        """Place objects (seen from the next frame on); answer where every object is."""
        assert isinstance(request, services_pb2.SceneRequest)
        self.place(request.objects)
        return self.scene_reply()

    def reset(self, position: np.ndarray, seed: int,
              ranges: services_pb2.RandomizationRanges | None) -> messages_pb2.JointState:
        """Restart at step 0 with freshly sampled physics and publish state 0.

        A command received for the old episode is dropped. An engaged
        emergency stop stays engaged: the arm holds the reset pose.
        """
        self.applied = sample(ranges, seed)
        self.applied_hash = randomization_hash(self.applied)
        self.backend.reset(position, seed, self.applied)
        self.target = position.copy()
        self.k = 0
        self.joined = False
        self.paused = False
        self.newest = None
        self.kept = None
        if self.estop:
            self.target = self.backend.read_state().position.copy()
        return self.publish_state()

    def on_reset(self, request: Message) -> services_pb2.ResetReply:
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
        self.place(request.scene)  # before state 0 and its frames
        state = self.reset(position, request.seed, ranges)
        return services_pb2.ResetReply(state=state, applied=self.applied,
                                       randomization_hash=self.applied_hash)

    def on_step(self, request: Message) -> services_pb2.StepReply:
        """Advance N periods holding the target; publish the state they lead to (lockstep)."""
        assert isinstance(request, services_pb2.StepRequest)
        if not self.lockstep:
            raise self.node.refuse("step is a lockstep service; this node runs in realtime mode")
        if self.paused:
            raise self.node.refuse("the simulation starts with reset: call reset first (or run with --autostart)")
        if request.steps > MAX_STEPS_PER_CALL:
            raise self.node.refuse(f"at most {MAX_STEPS_PER_CALL} steps per call, asked for {request.steps}")
        if not request.steps:
            return services_pb2.StepReply(state=self.joint_state())
        for _ in range(request.steps):
            self.advance()
        return services_pb2.StepReply(state=self.publish_state())

    def on_estop(self, request: Message) -> services_pb2.Ack:
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
        info = self.role.info(self.backend.name, self.dt, self.config.mode, self.backend.model_hash,
                              self.applied_hash)
        info.extra.update(self.backend.physics_info)
        info.extra.update({"paused": str(self.paused).lower(), "estop": str(self.estop).lower(),
                           "deadline_ms": f"{self.config.deadline_s * 1000:g}",
                           "scene_objects": ",".join(self.backend.scene_objects),
                           "scene": json.dumps({p.name: list(p.position) for p in self.backend.scene.values()
                                                if not p.hidden})})
        if self.cameras:
            info.extra["cameras"] = json.dumps([spec.to_dict() for spec in self.cameras])
            info.extra["camera_pub"] = self.node.endpoints["camera"].pub
            info.metrics.update(self.render_time.total().as_dict("render_"))
            info.metrics["frames"] = float(self.frames.frames if self.frames else 0)
        if self.lockstep:
            info.extra["step_limit"] = "off" if self.limit == NO_LIMIT else str(self.limit)
        info.metrics.update({"step": float(self.k), "steps": float(self.total_steps),
                             "deadline_miss": float(self.node.counters["deadline_miss"])})
        info.metrics.update(self.physics.total().as_dict("physics_"))
        if self.lockstep:
            info.metrics.update(self.answer.total().as_dict("answer_"))
        else:
            info.metrics.update(self.period.total().as_dict("period_"))
            info.metrics.update(self.jitter.total().as_dict("jitter_"))
        info.metrics.update(self.phases.as_metrics())
        if self.phases.steps:
            info.extra["phases"] = self.phases.order
        return info
