"""The sim node as a real process: contract, modes, services, bad input, determinism."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.pubsub import Publisher, Subscriber
from bus.client import NodeClient
from bus.service import ServiceError
from bus.topics import CLOCK, EVENT, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.joints import LOWER, NAMES, UPPER, pose
from schemas import messages_pb2, services_pb2
from tests.conftest import HIL, Procs, poll_until, wait_ready, wait_robot

TIMEOUT_S = 30.0  # generous: a loaded 2-core machine


def start_sim(procs: Procs, run_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    return procs.hil("node", "sim", "--run-dir", str(run_dir), *args)


def metric(client: NodeClient, key: str) -> float:
    return client.info().metrics.get(key, 0.0)


def states(sub: Subscriber, timeout_ms: int = 100) -> list[messages_pb2.JointState]:
    out = []
    envelope = sub.recv(timeout_ms)
    while envelope is not None:
        if envelope.topic == JOINT_STATE:
            assert isinstance(envelope.message, messages_pb2.JointState)
            out.append(envelope.message)
        envelope = sub.recv(0)
    return out


def test_starts_answers_bus_ping_and_describes_itself(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                     zctx: zmq.Context) -> None:
    start_sim(procs, run_dir, "--backend", "mujoco")
    client = wait_robot(zctx, endpoints)
    ping = subprocess.run([HIL, "bus", "ping", "robot", "--run-dir", str(run_dir)], capture_output=True, text=True,
                          timeout=60)
    assert ping.returncode == 0, ping.stderr
    assert "robot" in ping.stdout
    described = client.info()
    assert described.role == "robot" and described.backend == "mujoco" and described.mode == "lockstep"
    assert list(described.joint_names) == list(NAMES)
    np.testing.assert_allclose(described.lower, LOWER)
    np.testing.assert_allclose(described.upper, UPPER)
    assert described.dt == pytest.approx(0.01)
    assert len(described.model_hash) == 64
    assert described.extra["paused"] == "true" and described.extra["physics_dt"] == "0.002"


def test_lockstep_paused_until_reset_then_republishes_state_0_without_misses(
        procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> None:
    start_sim(procs, run_dir, "--backend", "mock", "--deadline-ms", "50")
    client = wait_robot(zctx, endpoints)
    sub = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE, CLOCK], policy=QueuePolicy.QUEUE)
    time.sleep(0.3)
    assert states(sub, 300) == []  # paused: nothing published before the first reset
    with pytest.raises(ServiceError, match="reset first"):
        client.step(1)
    reply = client.reset(seed=3)
    assert reply.state.seq == 0 and reply.randomization_hash
    got: list[messages_pb2.JointState] = []
    poll_until(lambda: len(got.__iadd__(states(sub))) >= 4, "state 0 to be re-published")
    assert {s.seq for s in got} == {0}  # nobody answers: re-published, never advanced
    assert all(s.randomization_hash == reply.randomization_hash and s.trusted for s in got)
    np.testing.assert_allclose(got[0].position, pose("home"))
    assert metric(client, "deadline_miss") == 0
    stepped = client.step(7)
    assert stepped.state.seq == 7 and stepped.state.sim_time == pytest.approx(0.07)
    poll_until(lambda: any(s.seq == 7 for s in states(sub)), "state 7 after step")


def run_stream(procs: Procs, run_dir: Path, zctx: zmq.Context, backend: str, count: int) -> list[tuple]:
    """One lockstep run with the scripted responder: states 0..count-1, stamps left out."""
    endpoints = Endpoints.for_run(run_dir)
    start_sim(procs, run_dir, "--backend", backend, "--deadline-ms", "5000")
    procs.python("-m", "tools.bench.lockstep", "responder", str(run_dir))
    client = wait_robot(zctx, endpoints)
    wait_ready(zctx, endpoints, "policy")
    sub = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    time.sleep(0.3)  # the test's subscription reaches the node before state 0
    ranges = services_pb2.RandomizationRanges(mass_scale=0.2, damping_scale=0.2, friction_scale=0.5,
                                              actuator_gain_scale=0.1, obs_noise_std=0.002, max_latency_steps=2)
    client.reset(pose("ready"), 42, ranges)
    stream: dict[int, tuple] = {}

    def collect() -> bool:
        for s in states(sub):
            stream.setdefault(s.seq, (s.seq, tuple(s.names), tuple(s.position), tuple(s.velocity), tuple(s.effort),
                                      tuple(s.tcp), s.sim_time, s.randomization_hash, s.trusted))
        return len(stream) >= count and all(k in stream for k in range(count))

    poll_until(collect, f"{count} lockstep states", 60.0)
    assert metric(client, "deadline_miss") == 0
    client.shutdown("test done")
    return [stream[k] for k in range(count)]


@pytest.mark.parametrize(("args", "every"), [((), 10), (("--clock-every", "3"), 3)])
def test_lockstep_publishes_sim_clock_every_nth_state(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                      zctx: zmq.Context, args: tuple[str, ...], every: int) -> None:
    """sim/clock goes out with the states whose seq --clock-every divides (10 by default in lockstep), each
    with that state's step and sim_time."""
    start_sim(procs, run_dir, "--backend", "mock", "--deadline-ms", "5000", *args)
    procs.python("-m", "tools.bench.lockstep", "responder", str(run_dir))
    client = wait_robot(zctx, endpoints)
    wait_ready(zctx, endpoints, "policy")
    sub = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE, CLOCK], policy=QueuePolicy.QUEUE)
    time.sleep(0.3)  # the test's subscription reaches the node before state 0
    client.reset(seed=1)
    sim_time: dict[int, float] = {}
    clocks: list[messages_pb2.Clock] = []

    def collect() -> bool:
        envelope = sub.recv(100)
        while envelope is not None:
            if envelope.topic == JOINT_STATE:
                sim_time[envelope.message.seq] = envelope.message.sim_time  # type: ignore[union-attr]
            else:
                clocks.append(envelope.message)  # type: ignore[arg-type]
            envelope = sub.recv(0)
        return all(k in sim_time for k in range(40))

    poll_until(collect, "40 lockstep states", 60.0)
    client.shutdown("test done")
    steps = [c.step for c in clocks if c.step < 40]
    assert steps == list(range(0, 40, every))
    assert all(c.sim_time == sim_time[c.step] for c in clocks if c.step in sim_time)


@pytest.mark.parametrize("backend", ["mock", "mujoco"])
def test_same_seed_gives_bit_identical_joint_state_streams(procs: Procs, zctx: zmq.Context, backend: str,
                                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    first = run_stream(procs, Path(tmp_path_factory.mktemp("a", numbered=True)), zctx, backend, 300)
    procs.close()
    second = run_stream(procs, Path(tmp_path_factory.mktemp("b", numbered=True)), zctx, backend, 300)
    assert first == second
    moved = np.array([row[2] for row in first])
    assert np.ptp(moved[:, 0]) > 0.2  # the arm really followed the scripted trajectory


def test_bad_commands_are_rejected_counted_reported_and_survived(procs: Procs, run_dir: Path,
                                                                 endpoints: Endpoints, zctx: zmq.Context) -> None:
    start_sim(procs, run_dir, "--backend", "mock", "--mode", "realtime")
    client = wait_robot(zctx, endpoints)
    policy = Publisher(zctx, endpoints["policy"].pub, "test-policy")
    events = Subscriber(zctx, [endpoints["robot"].pub], [EVENT, JOINT_STATE], policy=QueuePolicy.QUEUE)
    home = pose("home").tolist()
    cases = {
        "command.non_finite": messages_pb2.JointCommand(position=[math.nan] + home[1:]),
        "command.joint_count": messages_pb2.JointCommand(position=home[:5]),
        "command.unknown_joint": messages_pb2.JointCommand(names=["base", "shoulder", "elbow", "wrist", "roll", "claw"],
                                                           position=home),
        "command.clamped_limits": messages_pb2.JointCommand(position=[0.0, 0.0, 9.0, 0.0, 0.0, 0.0]),
    }
    codes: set[str] = set()
    for counter, command in cases.items():
        def counted() -> bool:
            policy.publish(JOINT_COMMAND, command)
            return metric(client, counter) >= 1
        poll_until(counted, counter)
    poll_until(lambda: codes.update(_event_codes(events)) or set(cases) <= codes, "events for every bad command")
    # inf through the names path too, and the node still runs and answers
    bad = messages_pb2.JointCommand(names=list(NAMES), position=[math.inf] * 6)
    poll_until(lambda: (policy.publish(JOINT_COMMAND, bad), metric(client, "command.non_finite") >= 2)[1], "inf")
    last = states(events, 500)
    assert last and all(np.all(np.isfinite(s.position)) for s in last)
    assert all(LOWER[i] <= s.position[i] <= UPPER[i] for s in last for i in range(6))
    assert metric(client, "command.clamped_speed") >= 1  # the elbow target 9.0 was also a jump


def _event_codes(sub: Subscriber) -> set[str]:
    codes = set()
    envelope = sub.recv(50)
    while envelope is not None:
        if envelope.topic == EVENT:
            assert isinstance(envelope.message, messages_pb2.Event)
            codes.add(envelope.message.code)
        envelope = sub.recv(0)
    return codes


def test_deadline_miss_holds_and_counts_after_the_policy_joined(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                                zctx: zmq.Context) -> None:
    # A deadline a loaded machine's answers still meet: every miss below is the policy's silence.
    start_sim(procs, run_dir, "--backend", "mock", "--autostart", "--deadline-ms", "50")
    client = wait_robot(zctx, endpoints)
    policy = Publisher(zctx, endpoints["policy"].pub, "test-policy")
    sub = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    target = pose("home")
    target[0] = 0.3

    def answer_until(seq: int) -> bool:
        for s in states(sub, 50):
            if s.seq < seq:
                policy.publish(JOINT_COMMAND, messages_pb2.JointCommand(obs_seq=s.seq, position=target))
            if s.seq >= seq:
                return True
        return False

    poll_until(lambda: answer_until(5), "five answered steps")
    poll_until(lambda: metric(client, "deadline_miss") >= 10, "deadline misses once answers stop")
    last = poll_until(lambda: [s for s in states(sub) if s.seq > 60], "states advancing while holding")
    assert isinstance(last, list)
    # Held the last (speed-clamped) target and settled on it: not drifting, not back home.
    later = poll_until(lambda: [s for s in states(sub) if s.seq > last[-1].seq + 10], "more held states")
    assert isinstance(later, list)
    assert later[-1].position[0] == pytest.approx(last[-1].position[0], abs=1e-4)
    assert 0.005 < later[-1].position[0] <= 0.3  # moved toward the target (speed-clamped), never past it
    assert client.info().metrics["steps"] > 60


def test_estop_holds_position_and_ignores_commands_until_cleared(procs: Procs, run_dir: Path,
                                                                 endpoints: Endpoints, zctx: zmq.Context) -> None:
    start_sim(procs, run_dir, "--backend", "mock", "--mode", "realtime")
    client = wait_robot(zctx, endpoints)
    policy = Publisher(zctx, endpoints["policy"].pub, "test-policy")
    sub = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    ack = client.estop(True)
    assert ack.ok
    moved = pose("home")
    moved[0] = 1.0
    poll_until(lambda: (policy.publish(JOINT_COMMAND, messages_pb2.JointCommand(position=moved)),
                        metric(client, "command.estop_ignored") >= 5)[1], "commands ignored under estop")
    held = states(sub, 200)
    assert held and abs(held[-1].position[0]) < 1e-6
    assert client.info().extra["estop"] == "true"
    client.estop(False)
    poll_until(lambda: (policy.publish(JOINT_COMMAND, messages_pb2.JointCommand(position=moved)),
                        any(abs(s.position[0] - 1.0) < 1e-3 for s in states(sub)))[1], "moving after clear")


@pytest.mark.parametrize("priority", ["0", "5"])  # 5: SCHED_FIFO if allowed, else a warning and normal scheduling
def test_realtime_runs_on_the_wall_clock_and_refuses_step(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                          zctx: zmq.Context, priority: str) -> None:
    start_sim(procs, run_dir, "--backend", "mock", "--mode", "realtime", "--dt", "0.02", "--rt-priority", priority)
    client = wait_robot(zctx, endpoints)
    first = client.info().metrics["steps"]
    time.sleep(1.0)
    steps = client.info().metrics["steps"] - first
    assert 25 <= steps <= 75  # about 50 periods of 20 ms in a second, paced not raced
    with pytest.raises(ServiceError, match="lockstep"):
        client.step(1)
    assert "jitter_p99_us" in client.info().metrics


def test_reset_refuses_bad_positions_and_applies_randomization(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                               zctx: zmq.Context) -> None:
    start_sim(procs, run_dir, "--backend", "mock")
    client = wait_robot(zctx, endpoints)
    for position, match in (([0.0] * 5, "6 finite"), ([math.nan] * 6, "6 finite"), ([0, 0, 3.1, 0, 0, 0], "elbow")):
        with pytest.raises(ServiceError, match=match):
            client.reset(position)
    with pytest.raises(ServiceError, match="max_latency_steps"):
        client.reset(randomization=services_pb2.RandomizationRanges(max_latency_steps=10**9))
    ranges = services_pb2.RandomizationRanges(mass_scale=0.3, max_latency_steps=3)
    one = client.reset(seed=5, randomization=ranges)
    two = client.reset(seed=5, randomization=ranges)
    other = client.reset(seed=6, randomization=ranges)
    assert one.applied == two.applied and one.randomization_hash == two.randomization_hash
    assert one.randomization_hash != other.randomization_hash
    assert client.info().randomization_hash == other.randomization_hash


@pytest.mark.parametrize("how, mode", [("sigterm", "--autostart"), ("sigint", "--autostart"),
                                       ("shutdown", "--autostart"), ("sigterm", "--mode=lockstep"),
                                       ("sigint", "--mode=realtime")])
def test_exits_cleanly(procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context, how: str,
                       mode: str) -> None:
    proc = start_sim(procs, run_dir, "--backend", "mock", mode)  # --mode=lockstep: paused, waiting for reset
    client = wait_robot(zctx, endpoints)
    if how == "shutdown":
        client.shutdown("test")
    else:
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    assert proc.wait(timeout=TIMEOUT_S) == 0
    assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]


def test_bad_options_are_clear_errors(procs: Procs, run_dir: Path) -> None:
    proc = start_sim(procs, run_dir, "--backend", "mujoco", "--dt", "0.005")
    assert proc.wait(timeout=TIMEOUT_S) == 2
    assert b"whole number of physics steps" in proc.stderr.read()  # type: ignore[union-attr]


def test_command_velocity_field_lowers_the_speed_limit(endpoints: Endpoints) -> None:
    from sim_node.node import SimConfig, SimNode

    sim = SimNode(SimConfig(backend="mock", mode="lockstep"), endpoints)
    try:
        sim.reset(pose("home"), 0, None)
        far = pose("home") + 1.0
        sim.accept(messages_pb2.JointCommand(position=far, velocity=[0.5] * 6))
        np.testing.assert_allclose(sim.target - pose("home"), [0.005] * 5 + [0.005])  # 0.5 rad/s * 10 ms
        sim.accept(messages_pb2.JointCommand(position=far, velocity=[99.0] * 6))  # never above the servo's own
        np.testing.assert_allclose(sim.target - pose("home"), [0.005 + 0.047] * 6)
        sim.accept(messages_pb2.JointCommand(position=far, velocity=[0.5] * 5))
        assert sim.node.counters["command.joint_count"] == 1
    finally:
        sim.backend.close()
        sim.node.close()


def test_at_the_step_limit_the_first_answer_is_kept_and_a_later_hold_is_stale(endpoints: Endpoints) -> None:
    """A policy whose watchdog holds while the runner keeps the limit up sends a second command for
    the same state; the first (the policy's real answer) is what the robot goes on with."""
    from sim_node.node import SimConfig, SimNode

    sim = SimNode(SimConfig(backend="mock", mode="lockstep"), endpoints)
    try:
        sim.on_limit(services_pb2.LimitRequest(last_step=0))
        sim.reset(pose("home"), 0, None)
        answer = pose("home")
        answer[0] = 0.3
        sim.on_command(messages_pb2.JointCommand(obs_seq=0, position=answer))
        sim.on_command(messages_pb2.JointCommand(obs_seq=0, position=pose("home"), hold=True))
        assert sim.k == 0 and sim.node.counters["stale_command"] == 1
        sim.on_limit(services_pb2.LimitRequest(last_step=5))
        assert sim.k == 1 and sim.target[0] > 0.0  # moved toward the kept answer, not held at home
    finally:
        sim.backend.close()
        sim.node.close()


def test_step_limit_stops_lockstep_at_its_state_and_applies_the_kept_answer_when_raised(
        procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> None:
    """The runner's episode boundary (scenarios/runner.py): commands move a lockstep robot up to the
    limit and no further, without deadline misses; raising it goes on from the kept answer; a reset
    keeps the limit; realtime refuses it."""
    start_sim(procs, run_dir, "--backend", "mock", "--deadline-ms", "50")
    client = wait_robot(zctx, endpoints)
    policy = Publisher(zctx, endpoints["policy"].pub, "test-policy")
    sub = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    target = pose("home")
    target[0] = 0.3
    seen: list[int] = []

    def answer_until(seq: int) -> bool:
        for s in states(sub, 20):
            seen.append(int(s.seq))
            policy.publish(JOINT_COMMAND, messages_pb2.JointCommand(obs_seq=s.seq, position=target))
        return bool(seen) and seen[-1] >= seq

    assert client.limit(10).ok
    client.reset(seed=1)
    poll_until(lambda: answer_until(10), "state 10")
    misses = metric(client, "deadline_miss")  # (a slow answer on the way: this test is no fast policy)
    until = time.monotonic() + 0.5  # 10 deadlines of 50 ms: it waits at 10, answered, without a miss
    while time.monotonic() < until:
        answer_until(11)
    assert max(seen) == 10 and client.info().extra["step_limit"] == "10"
    assert metric(client, "deadline_miss") == misses
    client.limit(20)  # the answer to state 10, kept, moves it on
    poll_until(lambda: answer_until(20), "state 20")
    time.sleep(0.3)
    answer_until(21)
    assert max(seen) == 20 and sorted(set(seen)) == list(range(21))
    seen.clear()
    client.reset(seed=1)  # the limit outlives a reset
    poll_until(lambda: answer_until(20), "state 20 of the next episode")
    assert seen[0] == 0 and max(seen) == 20
    client.limit(None)
    poll_until(lambda: answer_until(40), "states past the old limit")
    assert client.info().extra["step_limit"] == "off"


def test_realtime_refuses_a_step_limit(procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> None:
    start_sim(procs, run_dir, "--backend", "mock", "--mode", "realtime")
    client = wait_robot(zctx, endpoints)
    with pytest.raises(ServiceError, match="lockstep"):
        client.limit(5)
    assert "step_limit" not in client.info().extra
