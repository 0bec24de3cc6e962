"""``hil bench policy``: inference cost, the adapter's cost and the closed loop through the bus.

Measured in one run, so a busy machine shows in every figure:

- baselines: a raw pyzmq REQ/REP round trip between two processes
  (tools.bench.bus.raw_roundtrip), the floor of any request/answer exchange,
  and a raw PUB/SUB ping-pong, the same socket pattern lockstep uses;
- inference: ``session.run`` of policies/reach.onnx on its preallocated input,
  in this process, and the whole ``act`` (features + inference + action map);
- closed loop: ``hil node sim --backend mock --mode lockstep`` and ``hil node
  policy --model policies/reach.onnx`` as two processes, driving toward a goal;
  state k -> command -> state k+1 from the states' stamps (one monotonic
  clock), the robot's state -> matching command (its ``answer`` figures) and
  the policy's own receive -> send;
- with ``--policy PATH`` (any description: a policy folder, policy.yaml or
  model): the adapter's work per step (observation build + action mapping,
  what the harness adds to the model) beside its inference alone, and its
  closed loop beside reach.onnx's, both in this run.

Every target is listed at the end as ``targets: N met, M missed (names)``.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bus.endpoints import Endpoints
from bus.envelope import Encoder, decode
from bus.latency import Summary, summarize
from bus.phases import phases_of
from bus.pubsub import Publisher
from bus.topics import GOAL, JOINT_STATE
from policy_node.node import PolicyNode, PolicyNodeConfig
from policy_node.policy.base import Goal, Observation
from policy_node.policy.load import load_policy
from policy_node.policy.onnx_model import OnnxPolicy
from roarm.joints import NAMES, pose
from roarm.kinematics import fk, sample_reachable_goal
from schemas import messages_pb2
from tools.bench.bus import raw_roundtrip
from tools.bench.lockstep import LockstepPair, labelled, one_core
from tools.bench.phases import phase_line
from tools.bench.targets import Targets, verdict
from tools.training.rollout import cartesian_goal_message

REACH = Path(__file__).resolve().parents[2] / "policies" / "reach.onnx"
INFERENCE_P50_TARGET_US = 50.0
LOOP_RATIO_TARGET = 2.5
LOOP_P99_TARGET_US = 1000.0
ADAPTER_P50_TARGET_US = 20.0
LOOP_VS_REACH_TARGET = 1.10  # a brought policy's closed-loop p50 within 10 % of reach.onnx's
POLICY_CPU_TARGET_US = 120.0  # policy node CPU per lockstep step with reach.onnx, waiting included (issue 18)


@dataclass(frozen=True)
class LoopResult:
    source: str
    answer_p50_us: float  # robot: state published -> its command received
    answer_p99_us: float
    policy_p50_us: float  # policy: state received -> command sent
    policy_p99_us: float
    steps_per_s: float
    deadline_miss: int
    robot_cpu_us: float = math.nan  # CPU time (all threads) per step of each process
    policy_cpu_us: float = math.nan
    robot_phases: dict[str, float] = field(default_factory=dict)  # --phases runs: main thread us/step per phase
    policy_phases: dict[str, float] = field(default_factory=dict)


def inference(samples: int, model: Path = REACH) -> tuple[Summary, Summary]:
    """(session.run, whole act) over ``samples`` calls after a warm-up."""
    policy = _onnx(model)
    q = pose("home")
    obs = Observation(0, q, np.zeros(6), fk(q), cartesian_goal_message(np.array([0.25, 0.1, 0.2])))
    features = np.zeros(policy.description.observation_size, dtype=np.float32)
    runs, acts = [], []
    for i in range(samples + 500):
        t0 = time.perf_counter()
        policy.infer(features)
        t1 = time.perf_counter()
        policy.act(obs)
        t2 = time.perf_counter()
        if i >= 500:
            runs.append(t1 - t0)
            acts.append(t2 - t1)
    return summarize(runs), summarize(acts)


def _onnx(source: str | Path) -> OnnxPolicy:
    policy = load_policy(source)
    if not isinstance(policy, OnnxPolicy):
        raise ValueError(f"{source}: the adapter bench needs a model policy (a folder, policy.yaml or .onnx)")
    return policy


@dataclass(frozen=True)
class AdapterResult:
    build: Summary  # observation build
    mapping: Summary  # action mapping
    adapter: Summary  # both, per step
    inference: Summary  # session.run alone


def adapter_cost(samples: int, source: str | Path) -> AdapterResult:
    """Per step, in-process: observation build, inference, action mapping of one policy, timed separately.

    The state is the home pose with a small velocity and the TCP the robot
    sends; the goal is for the body the policy observes (its forward
    kinematics is part of the adapter's work when that is not the TCP).
    """
    policy = _onnx(source)
    q = pose("home")
    qd = np.full(6, 0.01)
    tcp = fk(q)
    body = next(iter(sorted(policy.description.goal_bodies)), "tcp")
    goal = Goal(np.array([0.25, 0.1, 0.2]), np.array([1.0, 0.0, 0.0, 0.0]), body)
    builder, mapper, session = policy.builder, policy.mapper, policy.session
    fetch, feed = policy.io.fetch, {policy.io.input: builder.batch if policy.io.batched else builder.vector,
                                    **policy.recurrent.inputs}
    builds, maps, runs, both = [], [], [], []
    clock = time.perf_counter
    for i in range(samples + 500):
        t0 = clock()
        builder.build(q, qd, mapper.last_action, goal, tcp)
        t1 = clock()
        raw = session.run(fetch, feed)[0]
        t2 = clock()
        mapper(raw, q)
        t3 = clock()
        if i >= 500:
            builds.append(t1 - t0)
            runs.append(t2 - t1)
            maps.append(t3 - t2)
            both.append((t1 - t0) + (t3 - t2))
    return AdapterResult(summarize(builds), summarize(maps), summarize(both), summarize(runs))


def _source_args(source: str) -> list[str]:
    if source.startswith("scripted:"):
        return ["--scripted", source.split(":", 1)[1]]
    return ["--model", source]


def answer_cost(samples: int, workdir: Path, source: str = str(REACH)) -> Summary:
    """The policy node's own work per state, in-process: decode the envelope,
    build the observation, act, watchdog, encode and publish the command,
    record metrics. No waiting on another process, so the figure hardly
    depends on how busy the machine is."""
    folder = Path(tempfile.mkdtemp(prefix="cost-", dir=workdir))
    node = PolicyNode(PolicyNodeConfig(source=source), Endpoints.for_run(folder))
    try:
        node.goal = cartesian_goal_message(np.array([0.25, 0.1, 0.2]))
        encoder = Encoder("bench-robot")
        q = pose("home")
        frames = [encoder.encode(JOINT_STATE, messages_pb2.JointState(
            stamp_ns=time.monotonic_ns(), seq=i + 1, names=NAMES, position=q, velocity=np.zeros(6), tcp=fk(q)))
            for i in range(samples + 500)]
        times = []
        for i, message in enumerate(frames):
            t0 = time.perf_counter()
            envelope = decode(message)
            envelope.recv_ns = time.monotonic_ns()
            node.answer(envelope)
            if i >= 500:
                times.append(time.perf_counter() - t0)
    finally:
        node.close()
    return summarize(times)


def closed_loop(seconds: float, workdir: Path, source: str = str(REACH), dt: float = 0.01,
                phases: bool = False, cpus: str | None = None) -> LoopResult:
    """Lockstep mock sim + a policy node chasing a new goal every second.

    The bench only publishes goals and reads the nodes' own figures at the
    end: a third process waking on every state would compete for the two
    cores and inflate what it measures. ``phases``: both nodes measure their
    CPU per phase (a run of its own: the marks cost a little); ``cpus``:
    both nodes pinned there.
    """
    flag = ["--phases"] if phases else []
    loop = LockstepPair(workdir, "mock", "lockstep", "--dt", repr(dt), *flag,
                        policy_args=[*_source_args(source), "--deadline-ms", "1000", *flag], cpus=cpus)
    try:
        runner = Publisher(loop.ctx, loop.endpoints["runner"].pub, "bench")
        rng = np.random.default_rng(7)
        for _ in range(10):  # slow joiners: let the goal arrive before the clock starts
            runner.publish(GOAL, cartesian_goal_message(sample_reachable_goal(rng)))
            time.sleep(0.05)
        loop.robot.reset(seed=1)
        first, t0 = loop.robot.info(), time.monotonic()
        cpu0 = loop.cpu_seconds()
        end = t0 + seconds
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            runner.publish(GOAL, cartesian_goal_message(sample_reachable_goal(rng)))
        robot, t1 = loop.robot.info(), time.monotonic()
        cpu1 = loop.cpu_seconds()
        policy = loop.policy.info()
        runner.close()
    finally:
        loop.close()
    steps = robot.metrics["steps"] - first.metrics["steps"]
    robot_cpu, policy_cpu = ((b - a) / steps * 1e6 if steps else math.nan for a, b in zip(cpu0, cpu1))
    return LoopResult(
        robot_cpu_us=robot_cpu,
        policy_cpu_us=policy_cpu,
        source=labelled(source if source.startswith("scripted:") else Path(source).name or source, cpus),
        answer_p50_us=robot.metrics["answer_p50_us"],
        answer_p99_us=robot.metrics["answer_p99_us"],
        policy_p50_us=policy.metrics["recv_to_send.run.p50_us"],
        policy_p99_us=policy.metrics["recv_to_send.run.p99_us"],
        steps_per_s=(robot.metrics["steps"] - first.metrics["steps"]) / (t1 - t0),
        deadline_miss=int(policy.metrics.get("deadline_miss", 0.0) + robot.metrics.get("deadline_miss", 0.0)),
        robot_phases=phases_of(robot),
        policy_phases=phases_of(policy),
    )


def _pubsub_echo(workdir: str, ready: Any) -> None:
    """The other end of the raw PUB/SUB ping-pong: every message straight back."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.connect(f"ipc://{workdir}/ping.pub")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"ipc://{workdir}/pong.pub")
    ready.set()
    while True:
        frames = sub.recv_multipart()
        pub.send_multipart(frames)
        if frames[0] == b"stop":
            break
    time.sleep(0.1)
    sub.close(0)
    pub.close(0)
    ctx.term()


def raw_pubsub_roundtrip(samples: int, workdir: Path) -> Summary:
    """Raw pyzmq PUB -> SUB -> PUB -> SUB ping-pong between two processes: the
    transport floor of a lockstep step (state out, command back), 200 B frames."""
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    proc = spawn.Process(target=_pubsub_echo, args=(str(workdir), ready), daemon=True)
    proc.start()
    ctx = zmq.Context()
    try:
        if not ready.wait(30):
            raise RuntimeError("PUB/SUB echo process did not start")
        pub = ctx.socket(zmq.PUB)
        pub.bind(f"ipc://{workdir}/ping.pub")
        sub = ctx.socket(zmq.SUB)
        sub.connect(f"ipc://{workdir}/pong.pub")
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        frames = [b"robot/joint_state", b"h" * 40, b"x" * 200]
        while True:  # slow joiners on both legs: ping until a pong comes back
            pub.send_multipart(frames)
            if sub.poll(50):
                sub.recv_multipart()
                break
        times = []
        for i in range(samples + 500):
            t0 = time.perf_counter()
            pub.send_multipart(frames)
            sub.recv_multipart()
            if i >= 500:
                times.append(time.perf_counter() - t0)
        pub.send_multipart([b"stop"])
        sub.poll(1000)
        pub.close(0)
        sub.close(0)
    finally:
        ctx.term()
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return summarize(times)


def report(samples: int, seconds: float, targets: Targets, policy: str | None = None) -> str:
    """The report text; each target is checked into ``targets`` (the caller prints its line)."""
    brought = None
    with tempfile.TemporaryDirectory(prefix="hbp-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        raw = raw_roundtrip(5000, 200, workdir)
        raw_pubsub = raw_pubsub_roundtrip(5000, workdir)
        run, act = inference(samples)
        costs = [answer_cost(min(samples, 10_000), workdir, source) for source in (str(REACH), "scripted:hold")]
        loops = [closed_loop(seconds, workdir, str(REACH)), closed_loop(seconds, workdir, "scripted:hold")]
        profiled = closed_loop(seconds, workdir, str(REACH), phases=True)
        pinned = closed_loop(seconds, workdir, str(REACH), cpus=one_core())
        if policy is not None:
            period = _onnx(policy).description.period or 0.01
            brought = (adapter_cost(samples, policy), closed_loop(seconds, workdir, policy, period), period)
    raw_p50, raw_p99 = raw.p50_s * 1e6, raw.p99_s * 1e6
    reach = loops[0]
    lines = [
        f"baseline: raw pyzmq REQ/REP round trip (2 processes, ipc, 200 B): p50 {raw_p50:.1f} us, p99 {raw_p99:.1f} us",
        f"          raw pyzmq PUB/SUB ping-pong (2 processes, ipc, lockstep's pattern): "
        f"p50 {raw_pubsub.p50_s * 1e6:.1f} us, p99 {raw_pubsub.p99_s * 1e6:.1f} us",
        "",
        f"inference, policies/reach.onnx in-process ({samples} calls, 1 thread, no spinning):",
        f"  session.run             p50 {run.p50_s * 1e6:7.1f} us  p99 {run.p99_s * 1e6:7.1f} us  "
        f"(target p50 < {INFERENCE_P50_TARGET_US:.0f} us: "
        f"{verdict(targets.check('session.run p50', run.p50_s * 1e6, INFERENCE_P50_TARGET_US))})",
        f"  act (features+run+map)  p50 {act.p50_s * 1e6:7.1f} us  p99 {act.p99_s * 1e6:7.1f} us",
        "",
        "policy node's work per state, in-process (decode, act, watchdog, encode, publish, metrics):",
        f"  reach.onnx              p50 {costs[0].p50_s * 1e6:7.1f} us  p99 {costs[0].p99_s * 1e6:7.1f} us",
        f"  scripted:hold           p50 {costs[1].p50_s * 1e6:7.1f} us  p99 {costs[1].p99_s * 1e6:7.1f} us",
        "",
    ]
    if brought is not None:
        cost, loop, period = brought
        adapter_ok = targets.check("adapter p50", cost.adapter.p50_s * 1e6, ADAPTER_P50_TARGET_US)
        lines += [
            f"adapter, {policy} in-process ({samples} steps): what the harness adds to the model per step",
            f"  observation build       p50 {cost.build.p50_s * 1e6:7.1f} us  p99 {cost.build.p99_s * 1e6:7.1f} us",
            f"  action mapping          p50 {cost.mapping.p50_s * 1e6:7.1f} us  p99 {cost.mapping.p99_s * 1e6:7.1f} us",
            f"  adapter (build + map)   p50 {cost.adapter.p50_s * 1e6:7.1f} us  p99 {cost.adapter.p99_s * 1e6:7.1f} us  "
            f"(target p50 <= {ADAPTER_P50_TARGET_US:.0f} us: {verdict(adapter_ok)})",
            f"  inference alone         p50 {cost.inference.p50_s * 1e6:7.1f} us  p99 {cost.inference.p99_s * 1e6:7.1f} us",
            "",
        ]
        loops.append(loop)
    lines += [
        "closed loop, mock sim lockstep + policy node (2 processes, ipc); state k sent -> command k received "
        "by the robot (targets judged on the unpinned reach.onnx row, the default):",
        f"  {'policy':<20} {'p50 us':>8} {'x raw':>6} {'p99 us':>8} {'policy recv->send p50':>22} {'p99':>7} "
        f"{'steps/s':>8} {'misses':>6} {'CPU/step: robot':>15} {'policy':>7}",
    ]
    for loop in (*loops, pinned):
        ratio = loop.answer_p50_us / raw_p50
        lines.append(
            f"  {loop.source:<20} {loop.answer_p50_us:>8.1f} {ratio:>6.2f} {loop.answer_p99_us:>8.1f} "
            f"{loop.policy_p50_us:>22.1f} {loop.policy_p99_us:>7.1f} {loop.steps_per_s:>8,.0f} {loop.deadline_miss:>6}"
            f" {loop.robot_cpu_us:>15.0f} {loop.policy_cpu_us:>7.0f}")
    lines.append(
        f"  targets (reach.onnx): p50 <= {LOOP_RATIO_TARGET}x raw: "
        f"{verdict(targets.check('closed loop p50 / raw', reach.answer_p50_us / raw_p50, LOOP_RATIO_TARGET))}; "
        f"p99 < {LOOP_P99_TARGET_US:.0f} us: "
        f"{verdict(targets.check('closed loop p99', reach.answer_p99_us, LOOP_P99_TARGET_US))}; "
        f"policy CPU/step <= {POLICY_CPU_TARGET_US:.0f} us: "
        f"{verdict(targets.check('policy CPU/step', reach.policy_cpu_us, POLICY_CPU_TARGET_US))}")
    if brought is not None:
        loop, period = brought[1], brought[2]
        ratio = loop.answer_p50_us / reach.answer_p50_us
        within = targets.check("loop vs reach.onnx", ratio, LOOP_VS_REACH_TARGET)
        lines.append(f"  {loop.source} (dt {period:g} s) vs reach.onnx: p50 {ratio:.2f}x "
                     f"(target within {LOOP_VS_REACH_TARGET - 1:.0%}: {verdict(within)})")
    lines += [
        "",
        "where each step's CPU goes, reach.onnx loop again with --phases (us per step, the thread's CPU "
        "between marks; compare the in-process figures above, taken with warm caches):",
        phase_line("policy node", profiled.policy_phases, profiled.policy_cpu_us),
        phase_line("robot node ", profiled.robot_phases, profiled.robot_cpu_us),
        f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    return "\n".join(lines)
