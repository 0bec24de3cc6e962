"""``hil bench soak``: the lockstep loop with the recorder, for minutes, watching memory.

A leak that costs a few bytes per message is invisible in a 10-second test
and fatal in an 8-hour run. This starts the robot (sim, lockstep), a policy
that keeps the arm moving (scripted waypoints) and the MCAP recorder as
their own processes (on the process harness, so none outlives the bench),
then samples each node's resident memory (VmRSS from /proc/PID/status) and
the loop rate (the robot's step counter) at a fixed period. A node's memory
is its process group's (bus/processes.py), so anything it started counts.

Baselines come from the same run: memory growth is judged against the RSS
after warm-up (allocators, import caches and ZMQ buffers settle first), the
loop rate against the first window after warm-up.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from bus.client import NodeClient
from bus.endpoints import Endpoints
from bus.processes import Processes
from tools.bench.targets import Targets

HIL = str(Path(sys.executable).with_name("hil"))
GROWTH_TARGET = 0.05  # RSS growth after warm-up that the soak must stay under


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 10.0
    warmup_s: float = 60.0
    sample_s: float = 10.0
    backend: str = "mock"
    dt: float = 0.01
    record: bool = True
    out_dir: Path | None = None  # where the bag and logs go [default: a temp folder, removed]


@dataclass
class Sample:
    t_s: float
    steps: float
    rate_hz: float
    rss_kib: dict[str, int]


@dataclass
class SoakResult:
    config: SoakConfig
    samples: list[Sample] = field(default_factory=list)
    warm_index: int = 0
    bag_bytes: int = 0
    deadline_misses: float = 0.0

    def growth(self, node: str) -> float:
        """RSS growth from the end of warm-up to the end, as a fraction."""
        warm = self.samples[self.warm_index].rss_kib[node]
        return (self.samples[-1].rss_kib[node] - warm) / warm


def _node_argv(config: SoakConfig, run_dir: Path, out_dir: Path) -> list[tuple[str, str, list[str]]]:
    common = ["--run-dir", str(run_dir)]
    nodes = [
        ("robot", "robot", [HIL, "node", "sim", "--backend", config.backend, "--mode", "lockstep", "--autostart",
                            "--dt", f"{config.dt:g}", *common]),
        ("policy", "policy", [HIL, "node", "policy", "--scripted", "waypoints", *common]),
    ]
    if config.record:
        nodes.append(("recorder", "recorder", [HIL, "bag", "record", "-o", str(out_dir / "soak.mcap"),
                                               "--meta", "scenario=soak", *common]))
    return nodes


def run(config: SoakConfig, echo: Callable[[str], None] = print) -> SoakResult:
    """Run the soak; prints one line per sample as it goes."""
    keep = config.out_dir is not None
    out_dir = Path(config.out_dir) if keep else Path(tempfile.mkdtemp(prefix="hil-soak-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="hil-", dir="/tmp"))
    endpoints = Endpoints.for_run(run_dir)
    ctx = zmq.Context()
    processes = Processes(log_dir=out_dir)
    clients: dict[str, NodeClient] = {}
    result = SoakResult(config)
    try:
        for name, role, argv in _node_argv(config, run_dir, out_dir):
            node = processes.start(name, argv, role=role)
            clients[name] = NodeClient(ctx, endpoints[role].rep, "soak", timeout_s=2.0, retries=1)
            processes.wait_ready(node, clients[name].answers_ping, 60)
        result = _sample(config, processes, clients["robot"], echo)
        bag = out_dir / "soak.mcap"
        result.bag_bytes = bag.stat().st_size if bag.exists() else 0
    finally:
        processes.stop(ask=lambda node: clients[node.name].ask_shutdown("soak done"), grace_s=3.0, term_s=3.0)
        for client in clients.values():
            client.close()
        ctx.destroy(linger=0)
        if not keep:
            shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _sample(config: SoakConfig, processes: Processes, robot: NodeClient,
            echo: Callable[[str], None]) -> SoakResult:
    result = SoakResult(config)
    nodes = processes.by_name
    start = time.monotonic()
    end = start + config.minutes * 60
    warm_at = start + min(config.warmup_s, config.minutes * 60 / 2)
    previous: tuple[float, float] | None = None
    echo("nodes: " + ", ".join(f"{n} (pid {p.pid})" for n, p in nodes.items()))
    echo(f"{'t (s)':>7} {'steps':>9} {'rate (Hz)':>10}  " + "  ".join(f"{n + ' RSS':>14}" for n in nodes))
    next_at = start
    while True:
        now = time.monotonic()
        for node in nodes.values():
            if not node.alive():
                raise RuntimeError(f"{node.name} exited during the soak; end of {node.log_path}:\n{node.tail()}")
        metrics = robot.info().metrics
        steps = metrics.get("steps", 0.0)
        rate = (steps - previous[1]) / (now - previous[0]) if previous else 0.0
        previous = (now, steps)
        sample = Sample(now - start, steps, rate, {n: p.rss_kib() for n, p in nodes.items()})
        if now >= warm_at and not result.warm_index and result.samples:
            result.warm_index = len(result.samples)
            echo("-- warm-up over: memory growth is measured from here --")
        result.samples.append(sample)
        echo(f"{sample.t_s:7.0f} {steps:9.0f} {rate:10.1f}  "
             + "  ".join(f"{sample.rss_kib[n] / 1024:11.1f} MiB" for n in nodes))
        result.deadline_misses = metrics.get("deadline_miss", 0.0)
        if now >= end:
            return result
        next_at += config.sample_s
        time.sleep(max(0.0, min(next_at, end) - time.monotonic()))


def passed(result: SoakResult) -> bool:
    """Every node's RSS grew less than GROWTH_TARGET after warm-up."""
    if len(result.samples) < 3 or not result.warm_index:
        return False
    return all(result.growth(node) < GROWTH_TARGET for node in result.samples[0].rss_kib)


def report(result: SoakResult, targets: Targets) -> str:
    """RSS at start, after warm-up and at the end per node; loop rate over time."""
    s = result.samples
    if len(s) < 3 or not result.warm_index:
        targets.check("soak long enough to judge", 0.0, 1.0, kind="min")
        return "soak too short to judge: run for more than twice --warmup-s, or lower --warmup-s"
    warm, last = s[result.warm_index], s[-1]
    first_rate = s[result.warm_index + 1].rate_hz if len(s) > result.warm_index + 1 else last.rate_hz
    rates = [x.rate_hz for x in s[result.warm_index + 1:]] or [last.rate_hz]
    lines = [
        f"soak: {result.config.minutes:g} min, {result.config.backend} lockstep dt={result.config.dt:g} s, "
        f"policy waypoints, recorder {'on' if result.config.record else 'off'}; "
        f"{last.steps:.0f} steps, {result.deadline_misses:.0f} deadline misses"
        + (f", bag {result.bag_bytes / 1e6:.1f} MB" if result.bag_bytes else ""),
        "",
        f"{'node':<10} {'RSS start':>11} {'after warm-up':>14} {'end':>11} {'growth after warm-up':>21}",
    ]
    for node in warm.rss_kib:
        growth = result.growth(node)
        targets.check(f"{node} RSS growth", growth, GROWTH_TARGET)
        lines.append(f"{node:<10} {s[0].rss_kib[node] / 1024:8.1f} MiB {warm.rss_kib[node] / 1024:11.1f} MiB "
                     f"{last.rss_kib[node] / 1024:8.1f} MiB {growth * 100:+20.2f} %")
    lines += [
        "",
        f"loop rate: first window after warm-up {first_rate:.1f} Hz (baseline), "
        f"min {min(rates):.1f}, max {max(rates):.1f}, last {last.rate_hz:.1f} Hz "
        f"({(last.rate_hz / first_rate - 1) * 100 if first_rate else 0:+.1f} % vs baseline)",
        f"RSS growth after warm-up under {GROWTH_TARGET * 100:.0f} % for every node: {'yes' if passed(result) else 'NO'}",
    ]
    return "\n".join(lines)
