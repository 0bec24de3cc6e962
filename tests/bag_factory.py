"""Bags made in-process for the bag tests: real envelopes through the real
BagWriter, without starting nodes (fast, deterministic).

``kinematic_run`` also plays a tiny robot (each command is reached exactly by
the next state) driven by a real policy from ``policy_node.policy``, so the
bag holds what that policy really answered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bus.envelope import Encoder, Envelope, decode
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE
from roarm.joints import NAMES, pose
from schemas import messages_pb2
from tools.bag.writer import BagWriter

DT = 0.02


class Clock:
    """Fake receive/send stamps 1 ms apart: bags with sane, increasing times."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def tick(self, ns: int = 1_000_000) -> int:
        self.now += ns
        return self.now


def envelope(encoder: Encoder, topic: str, message: object, clock: Clock, skip: bool = False) -> Envelope:
    if skip:
        encoder.next_seq(topic)  # a seq that is never "received": a drop
    sent = clock.tick()
    env = decode(encoder.encode(topic, message, sent_ns=sent), parse=False)  # type: ignore[arg-type]
    env.recv_ns = clock.tick(200_000)
    return env


def tcp_goal(i: int) -> messages_pb2.Goal:
    goal = messages_pb2.Goal(id=f"g{i}", seq=i, tolerance=0.01)
    goal.tcp.x, goal.tcp.y, goal.tcp.z, goal.tcp.gripper = 0.22, 0.06 * (1 if i % 2 else -1), 0.18, math.nan
    return goal


def forward_tcp(q: np.ndarray) -> list[float]:
    """A made-up smooth TCP for synthetic bags (plots and distances only need numbers)."""
    return [0.2 + 0.05 * math.cos(q[1]), 0.05 * math.sin(q[0]), 0.2 + 0.05 * math.sin(q[2])]


def synthetic_bag(path: Path, steps: int = 200, gap_every: int = 0,
                  provenance: dict[str, str] | None = None, period_ns: int = 0) -> Path:
    """States, commands answering them (obs_seq), goals every 50 steps, heartbeats;
    one step every ``period_ns`` of recorded time (0: as close as the fake clock allows)."""
    clock = Clock()
    start = clock.now
    robot, policy, runner = Encoder("sim"), Encoder("policy"), Encoder("runner")
    bag = BagWriter(path, provenance or {"scenario": "synthetic", "schema_version": "1.0"})
    for k in range(steps):
        clock.now = max(clock.now, start + k * period_ns)
        if k % 50 == 0:
            bag.write("runner", envelope(runner, GOAL, tcp_goal(k // 50), clock))
        q = np.array([0.2 * math.sin(0.05 * k + i) for i in range(6)])
        state = messages_pb2.JointState(seq=k, names=NAMES, position=q, velocity=np.zeros(6), sim_time=k * DT,
                                        tcp=forward_tcp(q), trusted=True)
        bag.write("robot", envelope(robot, JOINT_STATE, state, clock, skip=bool(gap_every) and k % gap_every == 5))
        command = messages_pb2.JointCommand(seq=k, obs_seq=k, position=q + 0.01, hold=(k == 7))
        bag.write("policy", envelope(policy, JOINT_COMMAND, command, clock))
        if k % 25 == 0:
            bag.write("robot", envelope(robot, "node/heartbeat",
                                        messages_pb2.Heartbeat(node="sim", role="robot", state="ok"), clock))
    bag.close()
    return path


def kinematic_run(path: Path, act: Callable[[int, messages_pb2.JointState, messages_pb2.Goal], np.ndarray],
                  steps: int = 120, goals: int = 2, provenance: dict[str, str] | None = None,
                  holds: tuple[int, ...] = (), asked_holds: tuple[int, ...] = ()) -> Path:
    """A lockstep run of an ideal arm (state k+1 = command k) answered by ``act``;
    at the steps in ``holds`` a watchdog hold answers instead (``act`` is not asked: no fresh frame),
    at those in ``asked_holds`` too, after ``act`` was asked (its answer was over budget)."""
    clock = Clock()
    robot, policy, runner = Encoder("sim"), Encoder("policy"), Encoder("runner")
    bag = BagWriter(path, provenance or {"scenario": "kinematic", "dt": str(DT)})
    q = pose("home")
    goal = tcp_goal(0)
    for k in range(steps):
        if k % (steps // goals) == 0:
            goal = tcp_goal(k // (steps // goals))
            bag.write("runner", envelope(runner, GOAL, goal, clock))
        state = messages_pb2.JointState(seq=k, names=NAMES, position=q, velocity=np.zeros(6), sim_time=k * DT,
                                        tcp=forward_tcp(q), trusted=True)
        bag.write("robot", envelope(robot, JOINT_STATE, state, clock))
        if k in holds or k in asked_holds:
            if k in asked_holds:
                act(k, state, goal)  # the watchdog replaces this answer
            command = messages_pb2.JointCommand(seq=k, obs_seq=k, position=q, hold=True)
        else:
            q = np.asarray(act(k, state, goal), dtype=float)
            command = messages_pb2.JointCommand(seq=k, obs_seq=k, position=q)
        bag.write("policy", envelope(policy, JOINT_COMMAND, command, clock))
    bag.close()
    return path
