"""A bench rig around hw_node: what the hil tests and ``hil bench hw`` share.

``start_emulator`` starts the firmware emulator (``hil emulate roarm``) on the
process harness and waits for its pty. ``Probe`` stands in for the policy
(binds the policy's PUB to send joint commands) and watches the robot
(states, heartbeats, events), so a test reads as "command this, expect that".

Faults are injected into a running emulator through its control FIFO.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq

from bus.endpoints import Endpoints
from bus.processes import Child, Processes, file_appears
from bus.pubsub import Publisher, Subscriber
from bus.topics import EVENT, GOAL, HEARTBEAT, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.robot_client import RobotClient
from schemas import messages_pb2


HIL = str(Path(sys.executable).with_name("hil"))


def start_emulator(processes: Processes, link: Path, *args: str, control: Path | None = None,
                   timeout_s: float = 20.0, **popen: object) -> Child:
    """``hil emulate roarm`` with its pty at ``link`` (and its fault FIFO at ``control``), once the pty exists."""
    argv = [HIL, "emulate", "roarm", "--link", str(link), *(["--control", str(control)] if control else []), *args]
    emulator = processes.start("emulator", argv, **popen)
    processes.wait_ready(emulator, file_appears(link), timeout_s, waiting_for=f"create {link}")
    return emulator


def inject(control: Path, line: str) -> None:
    """Send one fault line (``unplug 2``, ``garbage 4000``, ...) to an emulator."""
    with open(control, "w") as fifo:
        fifo.write(line.strip() + "\n")


class Probe:
    def __init__(self, ctx: zmq.Context, endpoints: Endpoints, *, role: str = "policy") -> None:
        """``role`` is whose PUB the probe binds: "policy" to send joint commands
        itself, "runner" to send goals to a real policy node."""
        self.publisher = Publisher(ctx, endpoints[role].pub, "probe")
        self.states = Subscriber(ctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
        self.health = Subscriber(ctx, [endpoints["robot"].pub], [HEARTBEAT, EVENT], policy=QueuePolicy.QUEUE)
        self.robot = RobotClient(ctx, endpoints["robot"].rep, "probe", timeout_s=3.0, retries=2)
        self.seq = 0
        self.last_state: messages_pb2.JointState | None = None
        self.last_heartbeat: messages_pb2.Heartbeat | None = None
        self.events: list[messages_pb2.Event] = []
        self.state_count = 0
        # Called with every state received, in order (a latency probe must not
        # miss the first state that shows motion).
        self.on_state: Callable[[messages_pb2.JointState], None] | None = None

    def command(self, position: np.ndarray | list[float], obs_seq: int | None = None) -> None:
        self.seq += 1
        seq = self.last_state.seq if obs_seq is None and self.last_state is not None else (obs_seq or 0)
        self.publisher.publish(JOINT_COMMAND, messages_pb2.JointCommand(
            stamp_ns=time.monotonic_ns(), seq=self.seq, obs_seq=seq, position=[float(v) for v in position]))

    def goal(self, tcp: np.ndarray, tolerance: float = 0.01, timeout_s: float = 30.0, goal_id: str = "goal") -> None:
        """A Cartesian goal on task/goal (gripper left as is)."""
        self.seq += 1
        self.publisher.publish(GOAL, messages_pb2.Goal(
            stamp_ns=time.monotonic_ns(), seq=self.seq, id=goal_id, tolerance=tolerance, timeout_s=timeout_s,
            tcp=messages_pb2.CartesianTarget(x=float(tcp[0]), y=float(tcp[1]), z=float(tcp[2]), gripper=math.nan)))

    def pump(self, timeout_ms: int = 20) -> list[messages_pb2.JointState]:
        """Everything received now: returns the new states, keeps the newest of each."""
        new = []
        envelope = self.states.recv(timeout_ms)
        while envelope is not None:
            assert isinstance(envelope.message, messages_pb2.JointState)
            new.append(envelope.message)
            if self.on_state is not None:
                self.on_state(envelope.message)
            envelope = self.states.recv(0)
        if new:
            self.last_state = new[-1]
            self.state_count += len(new)
        for envelope in self.health.drain():
            if isinstance(envelope.message, messages_pb2.Heartbeat) and envelope.message.role == "robot":
                self.last_heartbeat = envelope.message
            elif isinstance(envelope.message, messages_pb2.Event):
                self.events.append(envelope.message)
        return new

    def until(self, condition: Callable[[], bool], timeout_s: float, what: str,
              each: Callable[[], None] | None = None) -> None:
        """Pump until ``condition()`` holds; AssertionError naming ``what`` otherwise.

        ``each`` runs on every pass (e.g. keep commanding, as a policy would).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            self.pump()
            if condition():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; "
                                     f"last heartbeat: {self._heartbeat_text()}")
            if each is not None:
                each()

    def position(self) -> np.ndarray:
        assert self.last_state is not None, "no joint state received"
        return np.asarray(self.last_state.position)

    def state_is(self, state: str, detail: str = "") -> bool:
        hb = self.last_heartbeat
        return hb is not None and hb.state == state and detail in hb.detail

    def _heartbeat_text(self) -> str:
        hb = self.last_heartbeat
        if hb is None:
            return "none"
        return f"{hb.state} {hb.detail!r} {dict(hb.counters)}"

    def counter(self, key: str) -> int:
        return int(self.last_heartbeat.counters.get(key, 0)) if self.last_heartbeat is not None else 0

    def close(self) -> None:
        self.publisher.close()
        self.states.close()
        self.health.close()
        self.robot.close()
