"""Bad input into every subscriber and service of real node processes.

Hypothesis builds random and mutated frames (wrong frame counts, truncated
protobuf, oversize frames, wrong types, other schema versions, NaN/inf,
unknown joint names); each kind has the counter it must land in. After every
batch the node must still answer ping and its counters (``info.metrics``)
must have grown by exactly what was sent, no more, no less.

Nodes covered: the sim robot (lockstep), the policy, the hw robot (on the
firmware emulator) and the recorder; the runner is a short-lived process
built from the same Node and Subscriber. Subscribers are reached by binding
the PUB endpoint of a role that is not running (the node connects to it and
reconnects on its own); services by a raw REQ socket.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
import zmq
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.endpoints import Endpoints
from bus.envelope import DEFAULT_MAX_FRAME, Encoder, decode
from bus.node import Node
from bus.client import NodeClient
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE
from roarm.joints import NAMES, pose
from schemas import SCHEMA_MAJOR, SCHEMA_MINOR, messages_pb2, services_pb2
from tests.conftest import Procs, wait_ready, wait_robot
from tools.bench.rig import start_emulator

Frames = list[bytes]
Sample = tuple[Frames, str]  # frames and the counter they must land in

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- frames and the counter each must land in -----------------------------------------
def header(type_name: str, *, major: int = SCHEMA_MAJOR, seq: object = 1, src: object = "fuzz") -> bytes:
    return msgpack.packb({"seq": seq, "src": src, "type": type_name, "sent_ns": time.monotonic_ns(),
                          "v": (major, SCHEMA_MINOR)})


def envelope_frames(topic: str, message: object, type_name: str | None = None) -> Frames:
    payload = message.SerializeToString()  # type: ignore[attr-defined]
    return [topic.encode(), header(type_name or message.DESCRIPTOR.full_name), payload]  # type: ignore[attr-defined]


def does_not_parse(cls: type, payload: bytes) -> bool:
    try:
        cls().ParseFromString(payload)
    except DecodeError:
        return True
    return False


def bus_rejects(first: bytes, type_name: str, valid_payload: bytes, wrong_type: str, cls: type) -> st.SearchStrategy[Sample]:
    """Envelope-level garbage for a socket whose first frame must be ``first``
    (a subscribed topic or a service method) and that takes ``type_name``."""
    blob = st.binary(max_size=64)
    good_header = st.builds(lambda: header(type_name))
    return st.one_of(
        st.lists(blob, max_size=5).filter(lambda f: len(f) != 2).map(lambda f: ([first, *f], "reject.frame_count")),
        st.integers(DEFAULT_MAX_FRAME + 1, DEFAULT_MAX_FRAME + 4096).map(
            lambda n: ([first, header(type_name), b"\x00" * n], "reject.oversize")),
        st.one_of(
            blob,
            st.builds(msgpack.packb, st.one_of(st.integers(-2**63, 2**64 - 1), st.text(max_size=8), st.lists(st.integers(-2**63, 2**63 - 1), max_size=3))),
            st.builds(lambda seq: msgpack.packb({"seq": seq, "src": "x", "type": type_name, "sent_ns": 1,
                                                 "v": (SCHEMA_MAJOR, 0)}), st.text(max_size=4)),
        ).map(lambda h: ([first, h, valid_payload], "reject.bad_header")),
        st.integers(0, 99).filter(lambda m: m != SCHEMA_MAJOR).map(
            lambda m: ([first, header(type_name, major=m), valid_payload], "reject.schema_version")),
        st.text(min_size=1, max_size=24).map(
            lambda t: ([first, header(f"roarm.v9.{t}"), valid_payload], "reject.unknown_type")),
        st.just(([first, header(wrong_type), b""], "reject.wrong_type")),
        st.one_of(
            st.integers(1, max(1, len(valid_payload) - 1)).map(lambda n: valid_payload[:n]),
            st.binary(min_size=1, max_size=48),
        ).filter(lambda p: does_not_parse(cls, p)).map(lambda p: ([first, header(type_name), p], "reject.bad_payload")),
    )


finite = st.floats(-3.0, 3.0, allow_nan=False)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def bad_commands() -> st.SearchStrategy[tuple[messages_pb2.JointCommand, str]]:
    """Well-formed JointCommands the robot must refuse (roarm.safety)."""
    nan_positions = st.tuples(st.lists(finite, min_size=6, max_size=6), st.integers(0, 5), non_finite).map(
        lambda t: [*t[0][:t[1]], t[2], *t[0][t[1] + 1:]])
    return st.one_of(
        nan_positions.map(lambda p: (messages_pb2.JointCommand(position=p), "command.non_finite")),
        st.lists(finite, max_size=12).filter(lambda p: len(p) != 6).map(
            lambda p: (messages_pb2.JointCommand(position=p), "command.joint_count")),
        st.tuples(st.integers(0, 5), st.text(min_size=1, max_size=12).filter(lambda n: n not in NAMES)).map(
            lambda t: (messages_pb2.JointCommand(names=[*NAMES[:t[0]], t[1], *NAMES[t[0] + 1:]],
                                                 position=list(pose("home"))), "command.unknown_joint")),
    )


def bad_states() -> st.SearchStrategy[messages_pb2.JointState]:
    """Well-formed JointStates a policy must not act on."""
    home = list(pose("home"))
    return st.one_of(
        st.tuples(st.integers(0, 5), non_finite).map(
            lambda t: messages_pb2.JointState(names=NAMES, position=[*home[:t[0]], t[1], *home[t[0] + 1:]])),
        st.lists(finite, max_size=12).filter(lambda p: len(p) != 6).map(
            lambda p: messages_pb2.JointState(names=NAMES, position=p)),
        st.text(min_size=1, max_size=12).filter(lambda n: n not in NAMES).map(
            lambda n: messages_pb2.JointState(names=[n, *NAMES[1:]], position=home)),
    )


# -- talking to the nodes ----------------------------------------------------------
def rejected(client: NodeClient) -> Counter[str]:
    info = client.info()
    return Counter({k: int(v) for k, v in info.metrics.items() if k.startswith(("reject.", "command."))})


def settle(client: NodeClient, want: Counter[str], timeout_s: float = 20.0) -> Counter[str]:
    """The node's reject counters once they reach ``want`` (or at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        have = rejected(client)
        if have == want or time.monotonic() > deadline:
            return have
        time.sleep(0.02)


def join(pub: zmq.Socket, client: NodeClient, first: bytes, spin: Callable[[], None] = lambda: None) -> None:
    """Send a countable probe until the node's subscriber is connected (slow joiner)."""
    before = rejected(client)["reject.frame_count"]
    deadline = time.monotonic() + 30
    while rejected(client)["reject.frame_count"] == before:
        assert time.monotonic() < deadline, "the node never connected to the injected publisher"
        pub.send_multipart([first])
        spin()
        time.sleep(0.1)


def raw_call(ctx: zmq.Context, endpoint: str, frames: Frames) -> Frames:
    """One raw request; the node must answer every request it can read."""
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(endpoint)
    try:
        req.send_multipart(frames)
        assert req.poll(20_000), f"no reply to {[f[:40] for f in frames]}"
        return req.recv_multipart()
    finally:
        req.close(0)


def check_services(ctx: zmq.Context, client: NodeClient, endpoint: str, batch: list[Sample]) -> None:
    before = rejected(client)
    for frames, _ in batch:
        reply = decode(raw_call(ctx, endpoint, frames))
        assert isinstance(reply.message, services_pb2.Error), reply.message
    want = before + Counter(key for _, key in batch)
    assert settle(client, want) == want
    assert client.ping().schema_version


def service_rejects(method: str, request: type, valid: bytes, methods: set[str]) -> st.SearchStrategy[Sample]:
    """Garbage for a REP socket: envelope faults on ``method``, unknown methods, wrong types."""
    ping = services_pb2.PingRequest().SerializeToString()
    return st.one_of(
        bus_rejects(method.encode(), request.DESCRIPTOR.full_name, valid, "roarm.v1.Goal", request),
        st.text(min_size=1, max_size=16).filter(lambda m: m not in methods).map(
            lambda m: ([m.encode(), header("roarm.v1.PingRequest"), ping], "reject.unknown_method")),
    )


ROBOT_METHODS = {"ping", "info", "shutdown", "reset", "step", "estop", "scene"}
POLICY_METHODS = {"ping", "info", "shutdown"}


# -- the robot node ---------------------------------------------------------------
@pytest.mark.slow
def test_robot_node_survives_and_counts_bad_input(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                   zctx: zmq.Context) -> None:
    """Garbage on the robot's command subscriber and its services; every bad
    command is refused (the arm holds) and counted once."""
    procs.hil("node", "sim", "--backend", "mock", "--mode", "lockstep", "--autostart", "--deadline-ms", "2000",
              "--run-dir", str(run_dir))
    client = wait_robot(zctx, endpoints, timeout_s=60)
    fake_policy = zctx.socket(zmq.PUB)
    fake_policy.linger = 0
    fake_policy.bind(endpoints["policy"].pub)
    states = zctx.socket(zmq.SUB)
    states.linger = 0
    states.subscribe(JOINT_STATE.encode())
    states.connect(endpoints["robot"].pub)
    join(fake_policy, client, JOINT_COMMAND.encode())
    encoder = Encoder("fuzz-policy")

    current: list[messages_pb2.JointState] = []

    def freshest(block: bool) -> messages_pb2.JointState:
        """The newest state the robot published (waiting for one if asked)."""
        if block or not current:
            assert states.poll(20_000), "the robot stopped publishing states"
        while states.poll(0):
            current[:] = [decode(states.recv_multipart()).message]
        return current[0]

    def answer_with(message: messages_pb2.JointCommand, key: str) -> None:
        """Answer the robot's current state with a bad command and wait until
        it was judged. A command that lost the race against the robot's
        deadline is counted stale (not ours to judge); send it again."""
        while True:
            state = freshest(block=False)
            before = rejected(client)[key]
            stale = stale_commands()
            message.obs_seq = state.seq
            fake_policy.send_multipart(encoder.encode(JOINT_COMMAND, message))
            deadline = time.monotonic() + 20
            while rejected(client)[key] == before and stale_commands() == stale:
                assert time.monotonic() < deadline, f"the robot never judged a {key}"
                time.sleep(0.01)
            if rejected(client)[key] > before:
                after = freshest(block=True)
                while after.seq <= state.seq:
                    after = freshest(block=True)
                # refused: the arm holds where it was
                assert list(after.position) == pytest.approx(list(state.position), abs=1e-6)
                return

    def stale_commands() -> int:
        return int(client.info().metrics.get("stale_command", 0))

    command = messages_pb2.JointCommand(position=list(pose("home")))
    bus_garbage = bus_rejects(JOINT_COMMAND.encode(), "roarm.v1.JointCommand", command.SerializeToString(),
                              "roarm.v1.JointState", messages_pb2.JointCommand)
    commands = st.lists(st.one_of(bus_garbage.map(lambda s: ("frames", s)), bad_commands().map(lambda c: ("command", c))),
                        min_size=1, max_size=6)

    @SETTINGS
    @given(batch=commands)
    def sub_batch(batch: list[tuple[str, object]]) -> None:
        before = rejected(client)
        want = Counter()
        for kind, item in batch:
            if kind == "frames":
                frames, key = item  # type: ignore[misc]
                fake_policy.send_multipart(frames)
            else:
                message, key = item  # type: ignore[misc]
                answer_with(message, key)
            want[key] += 1
        want = before + want
        assert settle(client, want) == want
        assert client.ping().role == "robot"

    sub_batch()

    @SETTINGS
    @given(batch=st.lists(service_rejects(
        "reset", services_pb2.ResetRequest, services_pb2.ResetRequest(seed=3, position=list(pose("home")))
        .SerializeToString(), ROBOT_METHODS), min_size=1, max_size=6))
    def service_batch(batch: list[Sample]) -> None:
        check_services(zctx, client, endpoints["robot"].rep, batch)

    service_batch()

    # Requests the handlers refuse are answered with an error, the node stays up.
    with pytest.raises(Exception, match="finite"):
        client.reset([math.nan] * 6, retries=1)
    with pytest.raises(Exception, match="steps per call"):
        client.step(10**9, retries=1)

    # A frame beyond ZMQ's MAXMSGSIZE never reaches the node: ZMQ drops that
    # connection (nothing to count); the node carries on.
    fake_policy.send_multipart([JOINT_COMMAND.encode(), header("roarm.v1.JointCommand"), b"\x00" * (40 << 20)])
    time.sleep(0.5)
    assert client.ping().role == "robot"
    for sock in (fake_policy, states):
        sock.close(0)
    client.shutdown("test done")
    client.close()


# -- the policy node --------------------------------------------------------------
@pytest.mark.slow
def test_policy_node_survives_and_counts_bad_input(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                    zctx: zmq.Context) -> None:
    """The policy's state subscriber is fed by a stand-in robot (a bus.Node in
    this process answering info like a sim); its goal subscriber by a stand-in
    runner; its services by raw requests."""
    # the robot's info, as a real sim node describes itself
    sim_dir = run_dir / "sim"
    sim_endpoints = Endpoints.for_run(sim_dir)
    procs.hil("node", "sim", "--backend", "mock", "--mode", "realtime", "--run-dir", str(sim_dir))
    sim = wait_ready(zctx, sim_endpoints, "robot", timeout_s=60)
    robot_info = sim.info()
    sim.shutdown("only needed its info")
    sim.close()

    robot = Node("robot", "stand-in", endpoints, ctx=zctx,
                 info=lambda: services_pb2.NodeInfo.FromString(robot_info.SerializeToString()))
    # a long watchdog deadline: no stale-state holds between the states we send
    policy = procs.hil("node", "policy", "--scripted", "hold", "--deadline-ms", "600000", "--run-dir", str(run_dir))
    client = NodeClient(zctx, endpoints["policy"].rep, "test", timeout_s=5.0, retries=2)

    def serve_robot() -> bool:
        """The stand-in robot answers the policy's start-up info call while we wait for the policy."""
        robot.spin(20)
        return True

    procs.wait_ready(policy, client.answers_ping, 60, keep_going=serve_robot)

    def spin() -> None:
        robot.spin(5)

    seq = 0

    def send_state(frames: Frames, key: str | None) -> None:
        """One state at a time (the policy keeps only the newest): wait until it is handled."""
        before = rejected(client)[key] if key else commands_sent()
        robot.publisher.send_frames(frames)
        deadline = time.monotonic() + 20
        while (rejected(client)[key] if key else commands_sent()) == before:
            assert time.monotonic() < deadline, f"the policy never handled {key or 'a good state'}"
            spin()

    def commands_sent() -> int:
        return int(client.info().metrics.get("commands", 0))

    encoder = Encoder("stand-in")
    good = messages_pb2.JointState(names=NAMES, position=list(pose("home")))
    join(robot.publisher.socket, client, JOINT_STATE.encode(), spin)
    send_state(encoder.encode(JOINT_STATE, good), None)  # the policy answers good states
    state_garbage = bus_rejects(JOINT_STATE.encode(), "roarm.v1.JointState", good.SerializeToString(),
                                "roarm.v1.JointCommand", messages_pb2.JointState)

    @SETTINGS
    @given(batch=st.lists(st.one_of(state_garbage, bad_states().map(
        lambda s: (encoder.encode(JOINT_STATE, s), "reject.bad_state"))), min_size=1, max_size=5))
    def state_batch(batch: list[Sample]) -> None:
        nonlocal seq
        before = rejected(client)
        for frames, key in batch:
            send_state(frames, key)
        want = before + Counter(key for _, key in batch)
        assert settle(client, want) == want
        seq += 1
        good.seq = seq
        send_state(encoder.encode(JOINT_STATE, good), None)  # and still answers good ones

    state_batch()

    runner = zctx.socket(zmq.PUB)
    runner.linger = 0
    runner.bind(endpoints["runner"].pub)
    join(runner, client, GOAL.encode(), spin)
    goal = messages_pb2.Goal(id="reach", tolerance=0.01)

    @SETTINGS
    @given(batch=st.lists(bus_rejects(GOAL.encode(), "roarm.v1.Goal", goal.SerializeToString(),
                                      "roarm.v1.JointState", messages_pb2.Goal), min_size=1, max_size=8))
    def goal_batch(batch: list[Sample]) -> None:
        before = rejected(client)
        for frames, _ in batch:
            runner.send_multipart(frames)
        want = before + Counter(key for _, key in batch)
        assert settle(client, want) == want

    goal_batch()

    @SETTINGS
    @given(batch=st.lists(service_rejects(
        "info", services_pb2.InfoRequest, b"", POLICY_METHODS), min_size=1, max_size=6))
    def service_batch(batch: list[Sample]) -> None:
        check_services(zctx, client, endpoints["policy"].rep, batch)

    service_batch()
    assert client.ping().role == "policy"
    runner.close(0)
    client.shutdown("test done")
    client.close()
    robot.close()


def paced(pub: zmq.Socket, client: NodeClient, batch: list[Sample], spin: Callable[[], None] = lambda: None) -> None:
    """Send one input at a time and wait until it is counted: a subscriber
    that keeps only the newest message (LATEST, queue of 4) must not lose any
    to its own queue limit, or the count could not be exact."""
    before = rejected(client)
    for frames, key in batch:
        seen = rejected(client)[key]
        pub.send_multipart(frames)
        deadline = time.monotonic() + 20
        while rejected(client)[key] == seen:
            assert time.monotonic() < deadline, f"the node never counted a {key}"
            spin()
            time.sleep(0.005)
    want = before + Counter(key for _, key in batch)
    assert settle(client, want) == want


# -- the real-arm node (on the firmware emulator) -------------------------------------
@pytest.mark.slow
def test_hw_node_survives_and_counts_bad_input(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                zctx: zmq.Context) -> None:
    """Garbage on the hw node's command subscriber (which keeps only the
    newest command) and its services; serial garbage is in test_badinput_serial.py."""
    link = run_dir / "roarm0"
    start_emulator(procs, link, timeout_s=60)
    procs.hil("node", "hw", "--port", str(link), "--run-dir", str(run_dir))
    client = wait_robot(zctx, endpoints, timeout_s=60)
    fake_policy = zctx.socket(zmq.PUB)
    fake_policy.linger = 0
    fake_policy.bind(endpoints["policy"].pub)
    join(fake_policy, client, JOINT_COMMAND.encode())
    encoder = Encoder("fuzz-policy")
    command = messages_pb2.JointCommand(position=list(pose("home")))
    garbage = st.one_of(
        bus_rejects(JOINT_COMMAND.encode(), "roarm.v1.JointCommand", command.SerializeToString(),
                    "roarm.v1.JointState", messages_pb2.JointCommand),
        bad_commands().map(lambda c: (encoder.encode(JOINT_COMMAND, c[0]), c[1])),
    )

    @SETTINGS
    @given(batch=st.lists(garbage, min_size=1, max_size=6))
    def sub_batch(batch: list[Sample]) -> None:
        paced(fake_policy, client, batch)
        assert client.ping().role == "robot"

    sub_batch()

    @SETTINGS
    @given(batch=st.lists(service_rejects(
        "torque", services_pb2.TorqueRequest, services_pb2.TorqueRequest(enable=True).SerializeToString(),
        {"ping", "info", "shutdown", "reset", "estop", "torque"}), min_size=1, max_size=6))
    def service_batch(batch: list[Sample]) -> None:
        check_services(zctx, client, endpoints["robot"].rep, batch)

    service_batch()
    # a reset to a NaN pose is refused by the handler, the node stays up
    with pytest.raises(Exception, match="reset pose"):
        client.reset([math.nan] * 6, retries=1)
    assert client.ping().role == "robot"
    fake_policy.close(0)
    client.shutdown("test done")
    client.close()


# -- the recorder ---------------------------------------------------------------------
@pytest.mark.slow
def test_recorder_survives_and_counts_bad_input(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                 zctx: zmq.Context, tmp_path: Path) -> None:
    """Garbage on the recorder's subscribers (it keeps payloads unparsed, so a
    truncated payload is recorded as it came, not rejected) and its services;
    good messages around the garbage are still recorded."""
    procs.hil("bag", "record", "-o", str(tmp_path / "fuzz.mcap"), "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "recorder", timeout_s=60)
    runner = zctx.socket(zmq.PUB)
    runner.linger = 0
    runner.bind(endpoints["runner"].pub)
    join(runner, client, GOAL.encode())
    goal = messages_pb2.Goal(id="reach", tolerance=0.01)
    encoder = Encoder("fuzz-runner")

    def received() -> float:
        return client.info().metrics.get("received", 0)

    garbage = bus_rejects(GOAL.encode(), "roarm.v1.Goal", goal.SerializeToString(), "roarm.v1.JointState",
                          messages_pb2.Goal).filter(lambda s: s[1] != "reject.bad_payload")

    @SETTINGS
    @given(batch=st.lists(garbage, min_size=1, max_size=8))
    def sub_batch(batch: list[Sample]) -> None:
        before = rejected(client)
        count = received()
        for frames, _ in batch:
            runner.send_multipart(frames)
        runner.send_multipart(encoder.encode(GOAL, goal))
        want = before + Counter(key for _, key in batch)
        assert settle(client, want) == want
        deadline = time.monotonic() + 20
        while received() < count + 1:  # the good goal behind the garbage is recorded
            assert time.monotonic() < deadline, "the recorder stopped recording"
            time.sleep(0.02)

    sub_batch()

    @SETTINGS
    @given(batch=st.lists(service_rejects("info", services_pb2.InfoRequest, b"", POLICY_METHODS),
                          min_size=1, max_size=6))
    def service_batch(batch: list[Sample]) -> None:
        check_services(zctx, client, endpoints["recorder"].rep, batch)

    service_batch()
    runner.close(0)
    client.shutdown("test done")
    client.close()
