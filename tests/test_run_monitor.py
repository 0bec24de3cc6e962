"""The runner's view of the bus, fed by real publishers over ipc."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial

import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.node import Node
from bus.pubsub import Publisher
from bus.topics import HEARTBEAT, JOINT_COMMAND, JOINT_STATE
from scenarios.compat import check, mismatches
from scenarios.monitor import Monitor
from schemas import messages_pb2, services_pb2

HOME = np.array([0.0, 0.0, 1.5708, 0.0, 0.0, 0.0])


class Bus:
    def __init__(self, zctx: zmq.Context, endpoints: Endpoints) -> None:
        self.node = Node("runner", "runner", endpoints, ctx=zctx)
        self.monitor = Monitor(self.node, tracking_lag=2)
        self.robot = Publisher(zctx, endpoints["robot"].pub, "sim")
        self.policy = Publisher(zctx, endpoints["policy"].pub, "policy")
        self.states: list[tuple[messages_pb2.JointState, np.ndarray]] = []
        # Subscriptions propagate asynchronously: wait until heartbeats get through.
        self.until(lambda: {"robot", "policy"} <= set(self.monitor.health), self.beat)

    def beat(self) -> None:
        self.robot.publish(HEARTBEAT, messages_pb2.Heartbeat(node="sim", role="robot", state="ok"))
        self.policy.publish(HEARTBEAT, messages_pb2.Heartbeat(node="policy", role="policy", state="ok"))

    def until(self, condition: Callable[[], bool], each: Callable[[], None] = lambda: None,
              timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            each()
            self.node.spin(10)
            self.states += self.monitor.poll()

    def state(self, seq: int, position: np.ndarray, stamp_ns: int | None = None) -> int:
        stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
        self.robot.publish(JOINT_STATE, messages_pb2.JointState(stamp_ns=stamp, seq=seq, sim_time=seq * 0.02,
                                                                position=list(position), tcp=[0.3, 0.0, 0.3]))
        return stamp

    def command(self, obs_seq: int, target: np.ndarray, stamp_ns: int) -> None:
        self.policy.publish(JOINT_COMMAND, messages_pb2.JointCommand(stamp_ns=stamp_ns, obs_seq=obs_seq,
                                                                     position=list(target)))

    def close(self) -> None:
        self.robot.close()
        self.policy.close()
        self.node.close()


def seen_state(bus: Bus, seq: int) -> bool:
    return bus.monitor.state is not None and bus.monitor.state.seq == seq


@pytest.fixture
def bus(zctx: zmq.Context, endpoints: Endpoints) -> Iterator[Bus]:
    b = Bus(zctx, endpoints)
    yield b
    b.close()


def test_tracking_latency_and_limits_from_a_stream(bus: Bus) -> None:
    bus.monitor.new_episode(0)
    bus.monitor.tracking = True
    path = [HOME + np.array([0.0, 0.0, 0.0, 0.01 * k, 0.0, 0.0]) for k in range(30)]
    path[25] = path[25] + np.array([0.0, 0.0, 1.5, 0.0, 0.0, 0.0])  # elbow 3.07: beyond its 2.95 limit
    for k in range(28):
        stamp = bus.state(k, path[k])
        bus.until(partial(seen_state, bus, k))
        # The policy asks for where the arm will be two steps later, 3 ms after the state;
        # at step 10 it asks for 0.2 rad more than the arm then does.
        target = path[k + 2] + (np.array([0.2, 0, 0, 0, 0, 0]) if k == 10 else 0.0)
        bus.command(k, target, stamp + 3_000_000)
    bus.until(lambda: bus.monitor.commands == 28)
    bus.state(28, path[28])
    bus.until(lambda: bus.monitor.states == 29)
    monitor = bus.monitor
    assert monitor.tracking_max == pytest.approx(0.2) and "base at step 12" in monitor.tracking_where
    assert monitor.tracking_count == 27
    assert monitor.limit_excess == pytest.approx(3.0708 - 2.95) and "elbow" in monitor.limit_where
    latency = monitor.latency.total()
    assert latency.count == 27 and latency.p50_s == pytest.approx(0.003, rel=0.02)  # seq 0 is not counted
    assert [s.seq for s, _ in bus.states] == list(range(29))


def test_commands_taken_before_their_states_are_paired_when_the_states_come(bus: Bus) -> None:
    """A runner that falls behind reads robot and policy fair-queued: a state's
    command can come out of its socket first. It still counts for latency and
    tracking; a previous episode's command for the same seq does not."""
    old_episode = time.monotonic_ns()
    bus.monitor.new_episode(old_episode)
    bus.monitor.tracking = True
    stamps = [old_episode + 1_000_000 * (k + 1) for k in range(8)]
    bus.command(7, HOME, old_episode - 1)  # stamped before any state of this episode: a previous episode's
    for k in range(1, 8):
        bus.command(k, HOME, stamps[k] + 2_000_000)  # each 2 ms after its state, but taken first
    bus.until(lambda: bus.monitor.commands == 8)
    assert bus.monitor.latency.count == 0
    for k in range(8):
        bus.state(k, HOME, stamp_ns=stamps[k])
    bus.until(lambda: bus.monitor.states == 8)
    latency = bus.monitor.latency.total()
    assert latency.count == 7 and latency.p50_s == pytest.approx(0.002, rel=0.02)
    assert bus.monitor.newest_answer == 7 and bus.monitor.tracking_count == 5  # states 3..7 against commands 1..5


def test_a_new_episode_drops_states_from_before_the_reset(bus: Bus) -> None:
    old = bus.state(500, HOME)
    bus.monitor.new_episode(old + 5_000)  # the reset, as stamped by the robot
    bus.state(501, HOME, stamp_ns=old + 1_000)  # from before the reset, delivered after it
    bus.state(0, HOME + 0.01, stamp_ns=old + 6_000)
    bus.until(partial(seen_state, bus, 0))
    assert bus.monitor.stale_states == 2 and bus.monitor.states == 1


def test_states_before_the_robots_state_0_are_not_judged(bus: Bus) -> None:
    """The real arm keeps counting its old seq while it moves to the reset pose."""
    reset = bus.state(40, HOME)
    bus.monitor.new_episode(reset)
    for k in range(41, 45):
        bus.state(k, HOME + 0.01 * (k - 40))  # still moving: the old episode
    bus.state(0, HOME + 0.05)
    bus.state(1, HOME + 0.05)
    bus.until(partial(seen_state, bus, 1))
    assert [s.seq for s, _ in bus.states] == [0, 1]
    assert bus.monitor.states == 2 and bus.monitor.stale_states == 0


def test_bad_states_are_counted_not_judged(bus: Bus) -> None:
    bus.robot.publish(JOINT_STATE, messages_pb2.JointState(seq=1, position=[float("nan")] * 6))
    bus.robot.publish(JOINT_STATE, messages_pb2.JointState(seq=2, position=[0.0] * 5))
    bus.until(lambda: bus.monitor.bad_states == 2, timeout_s=20)
    assert bus.monitor.state is None and bus.monitor.states == 0


def test_heartbeats_record_faults(bus: Bus) -> None:
    bus.robot.publish(HEARTBEAT, messages_pb2.Heartbeat(node="sim", role="robot", state="fault",
                                                        detail="servo 12 overheated", counters={"deadline_miss": 3}))
    bus.until(lambda: bus.monitor.health["robot"].state == "fault")
    health = bus.monitor.health["robot"]
    assert health.faults == ["sim: fault: servo 12 overheated"] and health.counters == {"deadline_miss": 3}


def info(role: str, **fields: object) -> services_pb2.NodeInfo:
    base = dict(role=role, schema_version="1.0", joint_names=["base", "shoulder", "elbow", "wrist", "roll", "gripper"],
                lower=[-3.14, -1.57, -1.0, -1.57, -3.14, 0.0], upper=[3.14, 1.57, 2.95, 1.57, 3.14, 1.5], dt=0.02)
    base.update(fields)
    return services_pb2.NodeInfo(**base)  # type: ignore[arg-type]


def test_policy_robot_spec_mismatches_are_named() -> None:
    assert mismatches(info("robot"), info("policy"), 0.02) == []
    assert mismatches(info("robot"), info("policy", dt=0.0, lower=[], upper=[]), None) == []  # not declared
    problems = mismatches(info("robot"), info("policy", dt=0.01, joint_names=["a"] * 6,
                                              upper=[3.14, 1.57, 2.5, 1.57, 3.14, 1.5]), 0.05)
    assert any(p.startswith("joint names: robot") for p in problems)
    limits = mismatches(info("robot"), info("policy", upper=[3.14, 1.57, 2.5, 1.57, 3.14, 1.5]), 0.02)
    assert any(p.startswith("upper limit of elbow: policy 2.5000 rad, robot 2.9500 rad") for p in limits)
    assert not any("trained at 0.01 s" in p for p in problems)  # a realtime robot slower than the policy: accepted
    assert "control period: scenario asks 0.05 s, the robot runs 0.02 s" in problems
    slower = check(info("robot"), info("policy", dt=0.01), 0.02)
    assert slower.ok and "moves slower than trained" in slower.warnings[0]
    lockstep = mismatches(info("robot", mode="lockstep"), info("policy", dt=0.01), 0.02)
    assert any("trained at 0.01 s" in p and "lockstep" in p for p in lockstep)
    # limits: the policy node's tolerance (1e-3 rad), not a stricter one of the runner's own
    near = [3.14, 1.57, 2.9505, 1.57, 3.14, 1.5]
    assert mismatches(info("robot"), info("policy", upper=near), 0.02) == []
    assert mismatches(info("robot", schema_version="2.0"), info("policy"), None) == [
        "robot speaks schema 2.0, the runner 1.x"]
