"""``hil bench bus``: the bus against raw pyzmq, measured in one run.

The floor is a raw pyzmq REQ/REP ping-pong between two processes. The bus
round trip sends a JointState through the real service classes (envelope +
protobuf encode and decode on both sides). Throughput is a real Publisher
in one process and a real Subscriber (decoding every payload) in another.
Each figure is printed beside the floor taken in the same run, so a slow or
busy machine shows up in both.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import zmq

from bus.latency import Summary, summarize
from bus.pubsub import Publisher, Subscriber
from bus.service import ServiceClient, ServiceServer
from bus.sockets import recv_frames, send_frames
from bus.topics import JOINT_STATE, QueuePolicy
from bus.waiting import DEFAULT_SPIN_US, SPARE_CORES_NEEDED, spare_cores
from roarm.joints import NAMES
from schemas import messages_pb2
from tools.bench import pingpong
from tools.bench.pingpong import PingPong
from tools.bench.targets import Targets, verdict

WARMUP = 500
RATIO_TARGET = 1.6  # bus round trip p50 / raw REQ/REP p50 (issue 18)
THROUGHPUT_TARGET = 100_000.0  # JointStates/s received and decoded


def sample_state(seq: int = 0) -> messages_pb2.JointState:
    """A JointState as a robot node publishes it, with every field filled."""
    return messages_pb2.JointState(
        stamp_ns=time.monotonic_ns(),
        seq=seq,
        names=NAMES,
        position=[0.1, -0.2, 1.5, 0.3, 0.0, 0.7],
        velocity=[0.01] * 6,
        effort=[0.2] * 6,
        sim_time=seq * 0.01,
        randomization_hash="3f2a9c1b7d4e8a60",
        trusted=True,
        tcp=[0.25, 0.0, 0.31],
    )


def _raw_echo(endpoint: str, ready: mp.Event) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(endpoint)
    ready.set()
    while True:
        msg = sock.recv()
        if msg == b"stop":
            sock.send(b"")
            break
        sock.send(msg)
    sock.close(0)
    ctx.term()


def _frames_echo(endpoint: str, ready: mp.Event) -> None:
    """Raw pyzmq REP answering the bus's three frames with the same three frames: no encode, no decode."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(endpoint)
    ready.set()
    while True:
        frames = recv_frames(sock)
        send_frames(sock, frames)
        if frames[0] == b"stop":
            break
    sock.close(0)
    ctx.term()


def _bus_echo(endpoint: str, ready: mp.Event) -> None:
    ctx = zmq.Context()
    server = ServiceServer(ctx, endpoint, "bench-echo")
    running = [True]

    def echo(request: messages_pb2.JointState) -> messages_pb2.JointState:
        return request

    def stop(_request: messages_pb2.JointState) -> messages_pb2.JointState:
        running[0] = False
        return messages_pb2.JointState()

    server.add("echo", messages_pb2.JointState, echo)  # type: ignore[arg-type]
    server.add("stop", messages_pb2.JointState, stop)  # type: ignore[arg-type]
    ready.set()
    poller = zmq.Poller()  # as a node waits: one poller kept for the whole loop
    poller.register(server.socket, zmq.POLLIN)
    while running[0]:
        if poller.poll(100):
            server.serve_pending(ready=True)
    server.close()
    ctx.term()


def _start(target: object, endpoint: str) -> mp.Process:
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    proc = spawn.Process(target=target, args=(endpoint, ready), daemon=True)
    proc.start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError("benchmark echo process did not start")
    return proc


BLOCK = 250


def roundtrips(samples: int, workdir: Path) -> tuple[Summary, Summary, Summary]:
    """Raw pyzmq floor, raw pyzmq with the bus's three frames, and bus round trips, in alternating blocks.

    Round-trip times on a shared or virtual machine drift by several times
    within a minute (vCPU wake-ups dominate a ping-pong), so the three are
    interleaved in blocks of BLOCK round trips: all see the same machine.
    The floor sends one frame as large as the serialized JointState; the
    three-frame baseline sends a JointState's envelope through plain pyzmq
    (what the wire format costs before any Python of the bus); the bus sends
    the JointState through ServiceClient/ServiceServer (envelope, protobuf
    and msgpack on both sides).
    """
    raw_ep, frames_ep, bus_ep = (f"ipc://{workdir}/raw.rep", f"ipc://{workdir}/frames.rep",
                                 f"ipc://{workdir}/bus.rep")
    raw_proc, frames_proc, bus_proc = (_start(_raw_echo, raw_ep), _start(_frames_echo, frames_ep),
                                       _start(_bus_echo, bus_ep))
    ctx = zmq.Context()
    raw = ctx.socket(zmq.REQ)
    raw.connect(raw_ep)
    three = ctx.socket(zmq.REQ)
    three.connect(frames_ep)
    client = ServiceClient(ctx, bus_ep, "bench", timeout_s=5.0, retries=1)
    state = sample_state()
    payload = state.SerializeToString()
    envelope = client.encoder.encode("echo", state)
    raw_times: list[float] = []
    frames_times: list[float] = []
    bus_times: list[float] = []
    for block in range(-(-(WARMUP + samples) // BLOCK)):
        keep = block * BLOCK >= WARMUP
        for _ in range(BLOCK):
            t0 = time.perf_counter()
            raw.send(payload)
            raw.recv()
            if keep:
                raw_times.append(time.perf_counter() - t0)
        for _ in range(BLOCK):
            t0 = time.perf_counter()
            send_frames(three, envelope)
            recv_frames(three)
            if keep:
                frames_times.append(time.perf_counter() - t0)
        for i in range(BLOCK):
            state.seq = i
            t0 = time.perf_counter()
            reply = client.call("echo", state)
            if keep:
                bus_times.append(time.perf_counter() - t0)
        assert isinstance(reply, messages_pb2.JointState) and reply.seq == BLOCK - 1
    raw.send(b"stop")
    raw.recv()
    raw.close(0)
    send_frames(three, [b"stop", b"", b""])
    recv_frames(three)
    three.close(0)
    client.call("stop", messages_pb2.JointState())
    client.close()
    ctx.term()
    for proc in (raw_proc, frames_proc, bus_proc):
        proc.join(5)
    return summarize(raw_times), summarize(frames_times), summarize(bus_times)


def raw_roundtrip(samples: int, payload_size: int, workdir: Path) -> Summary:
    """The floor alone: raw pyzmq REQ/REP ping-pong with one frame of ``payload_size`` bytes."""
    endpoint = f"ipc://{workdir}/raw.rep"
    proc = _start(_raw_echo, endpoint)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.connect(endpoint)
    payload = b"x" * payload_size
    times = []
    for i in range(WARMUP + samples):
        t0 = time.perf_counter()
        sock.send(payload)
        sock.recv()
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
    sock.send(b"stop")
    sock.recv()
    sock.close(0)
    ctx.term()
    proc.join(5)
    return summarize(times)


def _flood(endpoint: str, ready: mp.Event, count: int, raw: bool) -> None:
    """Publish ``count`` JointStates: through a Publisher (encoding each one),
    or, for the floor, the same three frames encoded once, with plain pyzmq."""
    ctx = zmq.Context()
    pub = Publisher(ctx, endpoint, "bench-pub", hwm=count + 1000)
    ready.set()
    time.sleep(0.5)  # let the subscriber's subscription arrive (slow joiner)
    state = sample_state()
    if raw:
        frames = pub.encoder.encode(JOINT_STATE, state)
        for _ in range(count):
            pub.socket.send_multipart(frames)
    else:
        for seq in range(count):
            state.seq = seq
            pub.publish(JOINT_STATE, state)
    time.sleep(1.0)  # let the queue drain before the socket goes
    pub.close()
    ctx.term()


@dataclass(frozen=True)
class Throughput:
    sent: int
    received: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0


def pubsub_throughput(count: int, workdir: Path, raw: bool = False) -> Throughput:
    """Messages per second a Subscriber receives and decodes from a Publisher
    process; with ``raw``, plain pyzmq on both sides (no encode, no decode)."""
    endpoint = f"ipc://{workdir}/flood-{'raw' if raw else 'bus'}.pub"
    ctx = zmq.Context()
    sub = Subscriber(ctx, [endpoint], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    proc = spawn.Process(target=_flood, args=(endpoint, ready, count, raw), daemon=True)
    proc.start()
    ready.wait(30)
    received = 0
    first = last = 0.0
    while received < count:
        if raw:
            got = sub.socket.poll(3000) and sub.socket.recv_multipart()
        else:
            got = sub.recv(3000) is not None
        if not got:
            break
        last = time.perf_counter()
        if received == 0:
            first = last
        received += 1
    proc.join(10)
    sub.close()
    ctx.term()
    return Throughput(count, received, last - first)


@dataclass(frozen=True)
class BusFigures:
    raw: Summary
    frames: Summary  # raw pyzmq carrying the bus's three frames
    bus: Summary
    raw_throughput: Throughput
    throughput: Throughput
    pingpongs: list[PingPong]

    @property
    def ratio_p50(self) -> float:
        return self.bus.p50_s / self.raw.p50_s


def run(samples: int = 20_000, messages: int = 200_000, spin_us: int = DEFAULT_SPIN_US) -> BusFigures:
    with tempfile.TemporaryDirectory(prefix="hil-bench-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        raw, frames, bus = roundtrips(samples, workdir)
        raw_throughput = pubsub_throughput(messages, workdir, raw=True)
        throughput = pubsub_throughput(messages, workdir)
        pings = min(samples, 5000)
        pingpongs = [pingpong.run(kind, pings, workdir, spin, sample_state())
                     for spin in (0, spin_us) for kind in ("raw", "bus")]
    return BusFigures(raw, frames, bus, raw_throughput, throughput, pingpongs)


def report(figures: BusFigures, targets: Targets) -> str:
    raw, frames, bus, tp = figures.raw, figures.frames, figures.bus, figures.throughput
    ratio_met = targets.check("bus round trip p50 / raw", figures.ratio_p50, RATIO_TARGET)
    rate_met = targets.check("PUB/SUB msg/s", tp.rate, THROUGHPUT_TARGET, kind="min")
    lines = [
        f"round trip, REQ/REP between two processes over ipc ({raw.count} samples each, interleaved)",
        f"  raw pyzmq, 1 frame (floor)   p50 {raw.p50_s * 1e6:7.1f} us   p99 {raw.p99_s * 1e6:7.1f} us",
        f"  raw pyzmq, the bus's 3 frames p50 {frames.p50_s * 1e6:6.1f} us   p99 {frames.p99_s * 1e6:7.1f} us"
        f"   ({frames.p50_s / raw.p50_s:.2f} x the floor: the wire format before any Python of the bus)",
        f"  bus, JointState              p50 {bus.p50_s * 1e6:7.1f} us   p99 {bus.p99_s * 1e6:7.1f} us",
        f"  ratio bus/raw                p50 {figures.ratio_p50:7.2f} x    p99 {bus.p99_s / raw.p99_s:7.2f} x"
        f"   (target p50 <= {RATIO_TARGET:.2f} x: {verdict(ratio_met)})",
        f"PUB/SUB, raw pyzmq (floor): {figures.raw_throughput.rate:10,.0f} msg/s received"
        f" ({figures.raw_throughput.sent - figures.raw_throughput.received:,} dropped)",
        f"PUB/SUB JointState, bus:    {tp.rate:10,.0f} msg/s received and decoded"
        f" ({tp.sent - tp.received:,} dropped), {tp.rate / figures.raw_throughput.rate:.2f} x the floor"
        f"   (target >= {THROUGHPUT_TARGET:,.0f} msg/s: {verdict(rate_met)})",
        "",
        "waiting: PUB/SUB ping-pong of a JointState between two processes, both sides blocking at once or",
        f"spinning first (bus/waiting.py; machine: {spare_cores():.1f} spare cores now, auto spins at >= "
        f"{SPARE_CORES_NEEDED:g}); CPU = both processes per round trip",
        f"  {'':<14} {'waiting':<22} {'p50 us':>8} {'p99 us':>9} {'CPU us':>8}",
    ]
    for p in figures.pingpongs:
        lines.append(f"  {p.name + ' pyzmq' if p.name == 'raw' else 'bus':<14} "
                     f"{'spin ' + str(p.spin_us) + ' us' if p.spin_us else 'block':<22} {p.p50_us:>8.1f} "
                     f"{p.p99_us:>9.1f} {p.cpu_us:>8.1f}")
    return "\n".join(lines)
