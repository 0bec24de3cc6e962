"""``hil bench bag``: what recording costs the loop, and how fast a bag replays.

1. Lockstep cost of recording: a real mock sim node in lockstep and the
   benchmarks' reactive responder (tools/bench/lockstep.py) run as fast as
   they go; steps/s come from the node's own step counter over a window,
   alternately without and with a real ``hil bag record`` process
   subscribed to everything (A B A B, so drift of a shared machine hits
   both; the cost is the median of paired ratios). Beside it, the
   recorder's CPU time per CPU time of the loop's two processes over the
   same windows, a figure the machine's load does not swing. Target:
   recording costs under 10 %.
2. Replay at ``--max``: a bag of JointStates (written by the real BagWriter)
   replayed by the real replay code to a real subscriber process, in
   messages/s; beside it the floor of raw pyzmq sending the same prepared
   frames to the same subscriber in the same run. Target: >= 20,000 msg/s.

Beside the recorder's CPU per message, the floor of the same run: a bare
subscriber process receiving what the recorder receives, the same way
(every role, queued, payloads left serialized, drained in 20 ms batches,
niced like the recorder) and writing nothing: what receiving alone costs
(ZMQ's I/O thread, three frames a message, the envelope check), which no
change to the recorder can remove.

Also ``python -m tools.bench.bag count RUN_DIR EXPECTED``: the counting
subscriber alone; ``python -m tools.bench.bag receive RUN_DIR SECONDS``:
the bare subscriber (prints messages and CPU seconds over its window).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from bus.client import NodeClient
from bus.endpoints import ROLES, Endpoints
from bus.envelope import Encoder, decode
from bus.processes import Child, Processes
from bus.pubsub import Subscriber
from bus.sockets import make_socket
from bus.topics import JOINT_STATE, QueuePolicy
from tools.bag.replay import ReplayConfig, replay
from tools.bag.writer import BagWriter
from tools.bench.bus import sample_state
from tools.bench.lockstep import LockstepPair
from tools.bench.targets import Targets, verdict

HIL = str(Path(sys.executable).with_name("hil"))
OVERHEAD_TARGET = 0.10
REPLAY_TARGET = 20_000.0
RECORDER_CPU_TARGET_US = 25.0  # recorder CPU per message recorded (issue 18)


@dataclass
class LoopResult:
    without: list[float] = field(default_factory=list)  # steps/s per window
    with_recorder: list[float] = field(default_factory=list)
    recorded_per_s: list[float] = field(default_factory=list)
    # CPU seconds over the with-recorder windows: the recorder's and the loop's (sim + responder).
    recorder_cpu_s: float = 0.0
    loop_cpu_s: float = 0.0
    recorded: float = 0.0  # messages the recorder took in over the with-recorder windows
    dropped: int = 0
    bag_bytes: int = 0
    receive_floor_us: float = math.nan  # a bare subscriber's CPU per message, same loop (receiving alone)

    @property
    def overhead(self) -> float:
        """1 - median of (with / without) over adjacent window pairs: drift of a shared machine cancels."""
        ratios = [b / a for a, b in zip(self.without, self.with_recorder, strict=True) if a > 0]
        return 1.0 - statistics.median(ratios) if ratios else math.nan

    @property
    def cpu_per_message_us(self) -> float:
        """Recorder CPU (all its threads) per message it recorded."""
        return self.recorder_cpu_s / self.recorded * 1e6 if self.recorded > 0 else math.nan

    @property
    def cpu_share(self) -> float:
        """Recorder CPU per loop CPU: what recording adds per step, whatever the machine's load."""
        return self.recorder_cpu_s / self.loop_cpu_s if self.loop_cpu_s > 0 else math.nan


@dataclass
class ReplayFigures:
    messages: int
    replay_per_s: float
    replay_received: int
    raw_per_s: float
    raw_received: int


def _window(run: LockstepPair, seconds: float) -> float:
    first, t0 = run.steps(), time.monotonic()
    time.sleep(seconds)
    return (run.steps() - first) / (time.monotonic() - t0)


class _Recorder:
    """A real ``hil bag record`` process for one window, on the harness; stopped with the shutdown service."""

    def __init__(self, processes: Processes, run_dir: Path, output: Path, ctx: zmq.Context) -> None:
        self.processes = processes
        self.client = NodeClient(ctx, Endpoints.for_run(run_dir)["recorder"].rep, "bench", timeout_s=5.0, retries=1)
        self.proc = processes.start("recorder", [HIL, "bag", "record", "-o", str(output), "--run-dir", str(run_dir)],
                                    role="recorder", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            processes.wait_ready(self.proc, self.client.answers_ping, 60.0)
            deadline = time.monotonic() + 30
            while self.client.info().metrics["received"] < 100:  # subscribed and receiving
                if time.monotonic() > deadline:
                    raise RuntimeError("the recorder receives nothing from the lockstep loop")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def _ask(self, _child: Child) -> None:
        self.client.ask_shutdown("bench window over", timeout_s=5.0)

    def stop(self) -> None:
        """Ask it to close its bag; signals only if it does not go within 30 s."""
        self.processes.stop([self.proc], ask=self._ask, grace_s=30.0, term_s=0.0)
        self.client.close()


def lockstep_cost(seconds: float, rounds: int, workdir: Path) -> LoopResult:
    """Steps/s of the mock lockstep loop, windows alternating without and with the recorder."""
    run = LockstepPair(workdir, "mock", "lockstep", "--autostart")
    result = LoopResult()
    try:
        run.wait_running("mock")
        for i in range(rounds):
            result.without.append(_window(run, seconds))
            bag = workdir / f"loop-{i}.mcap"
            recorder = _Recorder(run.processes, run.dir, bag, run.ctx)
            try:
                before = recorder.client.info().metrics["received"]
                cpu0 = [recorder.proc.cpu_seconds(), sum(run.cpu_seconds())]
                t0 = time.monotonic()
                result.with_recorder.append(_window(run, seconds))
                info = recorder.client.info()
                result.recorded_per_s.append((info.metrics["received"] - before) / (time.monotonic() - t0))
                result.recorded += info.metrics["received"] - before
                result.recorder_cpu_s += recorder.proc.cpu_seconds() - cpu0[0]
                result.loop_cpu_s += sum(run.cpu_seconds()) - cpu0[1]
                result.dropped += int(info.metrics["dropped"])
            finally:
                recorder.stop()
            result.bag_bytes = max(result.bag_bytes, bag.stat().st_size)
        result.receive_floor_us = _receive_floor(run, seconds)
    finally:
        run.close()
    return result


def _receive_floor(run: LockstepPair, seconds: float) -> float:
    """CPU per message of a bare subscriber process on the same loop (see the module's docstring)."""
    child = run.processes.start("receiver", [sys.executable, "-m", "tools.bench.bag", "receive", str(run.dir),
                                             str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = child.communicate(timeout=seconds + 60)
        messages, cpu_s = out.split()
        return float(cpu_s) / int(messages) * 1e6 if int(messages) else math.nan
    except (subprocess.TimeoutExpired, ValueError):
        run.processes.stop([child], term_s=0.0)
        return math.nan


def receive(run_dir: Path, seconds: float, batch_s: float = 0.02, nice: int = 10) -> tuple[int, float]:
    """Receive like the recorder for ``seconds`` after the first message, write nothing; print and return
    (messages, CPU seconds of this process, all threads) over that window."""
    os.nice(nice)
    ctx = zmq.Context()
    endpoints = Endpoints.for_run(run_dir)
    subs = [Subscriber(ctx, [endpoints[role].pub], (), policy=QueuePolicy.QUEUE, parse=False)
            for role in ROLES if role != "recorder" and role in endpoints.roles]
    deadline = time.monotonic() + 30.0
    while not any(sub.drain(many=True) for sub in subs):  # subscribed and receiving
        if time.monotonic() > deadline:
            break
        time.sleep(batch_s)
    received, cpu0, end = 0, time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        for sub in subs:
            received += len(sub.drain(many=True))
        time.sleep(batch_s)
    cpu_s = time.process_time() - cpu0
    for sub in subs:
        sub.close()
    ctx.term()
    print(received, f"{cpu_s:.6f}", flush=True)
    return received, cpu_s


def write_states_bag(path: Path, count: int) -> None:
    """``count`` JointStates through the real BagWriter, as the recorder writes them."""
    encoder = Encoder("sim")
    payload = bus_payload()
    bag = BagWriter(path, {"scenario": "bench", "dt": "0.01"})
    for k in range(count):
        envelope = decode(encoder.encode_raw(JOINT_STATE, "roarm.v1.JointState", payload, sent_ns=k * 10_000_000),
                          parse=False)
        envelope.recv_ns = k * 10_000_000 + 50_000
        bag.write("robot", envelope)
    bag.close()


def count(run_dir: Path, expected: int, idle_s: float = 1.0) -> int:
    """Receive (and decode) from the robot's PUB until ``expected`` arrived or it went idle; print the count."""
    ctx = zmq.Context()
    sub = Subscriber(ctx, [Endpoints.for_run(run_dir)["robot"].pub], [JOINT_STATE], policy=QueuePolicy.QUEUE)
    received = 0
    last = time.monotonic() + 60.0  # generous until the first message
    while received < expected and time.monotonic() - last < idle_s:
        if sub.recv(timeout_ms=100) is not None:
            received += 1
            last = time.monotonic()
        elif received == 0 and time.monotonic() > last:
            break
    sub.close()
    ctx.term()
    print(received, flush=True)
    return received


def _counter(processes: Processes, run_dir: Path, expected: int) -> Child:
    return processes.start("counter", [sys.executable, "-m", "tools.bench.bag", "count", str(run_dir), str(expected)],
                           stdout=subprocess.PIPE, text=True)


def _finish(processes: Processes, counter: Child) -> int:
    """What the counter counted; 0 if it says nothing within a minute (then it is stopped)."""
    try:
        out, _ = counter.communicate(timeout=60)
        return int(out.strip() or 0)
    except (subprocess.TimeoutExpired, ValueError):
        processes.stop([counter], term_s=0.0)
        return 0


def replay_speed(messages: int, workdir: Path) -> ReplayFigures:
    """The replay at --max and raw pyzmq, each to a real counting subscriber process."""
    bag = workdir / "replay.mcap"
    write_states_bag(bag, messages)

    with Processes() as processes:
        run_dir = Path(tempfile.mkdtemp(prefix="rp-", dir=workdir))
        counter = _counter(processes, run_dir, messages)
        result = replay(ReplayConfig(bag, Endpoints.for_run(run_dir), rate=None, wait_subscribers=1,
                                     wait_timeout_s=60.0, settle_s=0.3))
        replay_received = _finish(processes, counter)

        raw_dir = Path(tempfile.mkdtemp(prefix="raw-", dir=workdir))
        encoder, payload = Encoder("sim"), bus_payload()
        frames = [encoder.encode_raw(JOINT_STATE, "roarm.v1.JointState", payload, seq=i) for i in range(messages)]
        ctx = zmq.Context()
        sock = make_socket(ctx, zmq.PUB, Endpoints.for_run(raw_dir)["robot"].pub, bind=True,
                           options={zmq.SNDHWM: 10_000})
        counter = _counter(processes, raw_dir, messages)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        monitor.poll(60_000)
        time.sleep(0.3)  # the same settle the replay had
        t0 = time.monotonic()
        for frame in frames:
            sock.send_multipart(frame, copy=False)
        raw_s = time.monotonic() - t0
        raw_received = _finish(processes, counter)
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        ctx.term()
    return ReplayFigures(messages, result.rate_hz, replay_received, messages / raw_s, raw_received)


def bus_payload() -> bytes:
    return sample_state().SerializeToString()


def report(seconds: float, rounds: int, messages: int, targets: Targets) -> str:
    """The printed figures; each target checked into ``targets``."""
    with tempfile.TemporaryDirectory(prefix="hbb-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        loop = lockstep_cost(seconds, rounds, workdir)
        rep = replay_speed(messages, workdir)
    base = sum(loop.without) / len(loop.without)
    recorded = sum(loop.with_recorder) / len(loop.with_recorder)
    lines = [
        f"lockstep loop, mock sim + responder, dt 10 ms, {rounds} x {seconds:g} s windows alternating:",
        f"  without recorder (baseline): {base:>9,.0f} steps/s  ({', '.join(f'{x:,.0f}' for x in loop.without)})",
        f"  with recorder:               {recorded:>9,.0f} steps/s  "
        f"({', '.join(f'{x:,.0f}' for x in loop.with_recorder)})",
        f"  recording cost: {loop.overhead * 100:.1f} % fewer steps/s (median of paired windows; target < "
        f"{OVERHEAD_TARGET * 100:.0f} %: {verdict(targets.check('recording cost', loop.overhead, OVERHEAD_TARGET))})",
        f"  recorder CPU per message recorded: {loop.cpu_per_message_us:.1f} us (target <= "
        f"{RECORDER_CPU_TARGET_US:.0f} us: "
        f"{verdict(targets.check('recorder CPU/message', loop.cpu_per_message_us, RECORDER_CPU_TARGET_US))}); "
        f"floor: a bare subscriber receiving the same, writing nothing: {loop.receive_floor_us:.1f} us",
        f"  recorder CPU per loop CPU: {loop.cpu_share * 100:.1f} % ({loop.recorder_cpu_s:.2f} s beside "
        f"{loop.loop_cpu_s:.2f} s of sim + responder); stored "
        f"{sum(loop.recorded_per_s) / len(loop.recorded_per_s):,.0f} msg/s, {loop.dropped} dropped, "
        f"largest bag {loop.bag_bytes / 1e6:.1f} MB",
        "",
        f"replay --max of {rep.messages:,} JointStates to a decoding subscriber process (ipc):",
        f"  raw pyzmq PUB of prepared frames (floor): {rep.raw_per_s:>9,.0f} msg/s sent, "
        f"{rep.raw_received:,} received",
        f"  hil bag replay --max:                     {rep.replay_per_s:>9,.0f} msg/s sent, "
        f"{rep.replay_received:,} received (target >= {REPLAY_TARGET:,.0f} msg/s: "
        f"{verdict(targets.check('replay msg/s', rep.replay_per_s, REPLAY_TARGET, kind='min'))}; every message "
        f"delivered: {verdict(targets.check('replay delivered all', rep.replay_received, rep.messages, kind='min'))})",
        f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(shared with other work)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "count":
        count(Path(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "receive":
        receive(Path(sys.argv[2]), float(sys.argv[3]))
    else:
        sys.exit("usage: python -m tools.bench.bag count RUN_DIR EXPECTED | receive RUN_DIR SECONDS")
