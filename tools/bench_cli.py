"""``hil bench``: benchmarks that print figures beside a baseline taken in the same run."""

from __future__ import annotations

from pathlib import Path

import click

from bus.waiting import DEFAULT_SPIN_US
from scenarios.executors import ExecutorError
from scenarios.sweep import SweepError, parse_seeds
from tools.bench import bag as bag_bench
from tools.bench import bus as bus_bench
from tools.bench import camera as camera_bench
from tools.bench import hw as hw_bench
from tools.bench import peers as peers_bench
from tools.bench import policy as policy_bench
from tools.bench import run as run_bench
from tools.bench import sim as sim_bench
from tools.bench import soak
from tools.bench import sweep as sweep_bench
from tools.bench.targets import Targets


def _finish(text: str, targets: Targets) -> None:
    """Every benchmark ends the same way: its figures, one targets line, exit 1 when one was missed."""
    click.echo(text)
    click.echo(targets.line())
    raise SystemExit(targets.exit_code())


@click.group()
def bench() -> None:
    """Measure speed; every figure is printed beside a baseline from the same run.

    Each benchmark ends with one line `targets: N met, M missed (names)` and
    exits 1 when it missed a target, 0 when it met them all.

    \b
    Example:
      hil bench bus
    """


@bench.command("bus")
@click.option("--samples", type=int, default=20_000, show_default=True, help="Round trips per measurement.")
@click.option("--messages", type=int, default=200_000, show_default=True, help="Messages for the PUB/SUB test.")
@click.option("--spin-us", type=click.IntRange(min=1), default=DEFAULT_SPIN_US, show_default=True,
              help="Spin before blocking, for the waiting comparison (measured beside blocking at once).")
def bench_bus(samples: int, messages: int, spin_us: int) -> None:
    """Bus round trip and PUB/SUB throughput beside a raw pyzmq floor; waiting with and without a spin.

    Exit status 1 when a target is missed (the last line names it).

    \b
    Example:
      hil bench bus --samples 5000
    """
    targets = Targets()
    _finish(bus_bench.report(bus_bench.run(samples, messages, spin_us), targets), targets)


@bench.command("peers")
@click.option("--samples", type=click.IntRange(min=100), default=5000, show_default=True,
              help="Round trips per contender.")
def bench_peers(samples: int) -> None:
    """The same two-process ping-pong through raw pyzmq (the floor), this bus, eclipse-zenoh and dora-rs.

    zenoh and dora are benchmark-only extras: pip install -e '.[bench]'.
    A peer that is not installed is skipped, naming the extra.

    \b
    Example:
      hil bench peers --samples 3000
    """
    targets = Targets()
    _finish(peers_bench.report(peers_bench.run(samples), targets), targets)


@bench.command("camera")
@click.option("--seconds", type=click.FloatRange(min=0.5), default=2.0, show_default=True,
              help="Measurement window of each throughput round and lockstep figure.")
def bench_camera(seconds: float) -> None:
    """Camera frames/s and MB/s through the bus beside raw pyzmq, render time, lockstep with a camera.

    Ends with ``targets: N met, M missed (names)``; exits 1 when one is missed
    (the bus at least 0.9x raw pyzmq at 320x240 and 640x480 RGB).

    \b
    Example:
      hil bench camera --seconds 2
    """
    targets = Targets()
    _finish(camera_bench.report(seconds, targets), targets)


@bench.command("sim")
@click.option("--backend", "backends", type=click.Choice(["mock", "mujoco"]), multiple=True,
              default=("mock", "mujoco"), show_default=True, help="Backends to measure in lockstep (repeatable).")
@click.option("--seconds", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Measurement window per backend and mode.")
def bench_sim(backends: tuple[str, ...], seconds: float) -> None:
    """Sim node lockstep steps/s (physics vs bus) and realtime jitter, beside raw pyzmq.

    \b
    Example:
      hil bench sim --backend mock --seconds 3
    """
    targets = Targets()
    _finish(sim_bench.report(list(backends), seconds, targets), targets)


@bench.command("policy")
@click.option("--samples", type=click.IntRange(min=100), default=20_000, show_default=True,
              help="Inference calls to time in-process.")
@click.option("--seconds", type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Closed-loop measurement window (mock sim lockstep + policy node).")
@click.option("--policy", "policy_source", default=None,
              help="Also measure this policy (folder, policy.yaml or .onnx): adapter cost per step (observation "
                   "build + action mapping) beside its inference, and its closed loop beside reach.onnx's.")
def bench_policy(samples: int, seconds: float, policy_source: str | None) -> None:
    """reach.onnx inference and the lockstep closed loop through the bus, beside raw pyzmq.

    Ends with ``targets: N met, M missed (names)``; exits 1 when one is missed.

    \b
    Examples:
      hil bench policy --samples 5000 --seconds 3
      hil bench policy --policy my_policy --samples 5000 --seconds 3
    """
    targets = Targets()
    _finish(policy_bench.report(samples, seconds, targets, policy_source), targets)


@bench.command("soak")
@click.option("--minutes", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="How long to run the loop.")
@click.option("--warmup-s", type=click.FloatRange(min=0.0), default=60.0, show_default=True,
              help="Memory growth is measured from the end of this warm-up.")
@click.option("--sample-s", type=click.FloatRange(min=0.5), default=10.0, show_default=True,
              help="Seconds between RSS / loop-rate samples.")
@click.option("--backend", type=click.Choice(["mock", "mujoco"]), default="mock", show_default=True,
              help="Simulator of the robot node.")
@click.option("--record/--no-record", default=True, show_default=True, help="Run the MCAP recorder beside the loop.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Keep the bag and node logs here [default: a temp folder, removed].")
def bench_soak(minutes: float, warmup_s: float, sample_s: float, backend: str, record: bool,
               out_dir: Path | None) -> None:
    """Lockstep loop + recorder for minutes: RSS of each node and the loop rate over time.

    Target: RSS growth under 5 % after warm-up (exit status 1 otherwise).

    \b
    Example:
      hil bench soak --minutes 10
      hil bench soak --minutes 2 --warmup-s 30 --sample-s 5 --out /tmp/soak
    """
    result = soak.run(soak.SoakConfig(minutes=minutes, warmup_s=warmup_s, sample_s=sample_s, backend=backend,
                                      record=record, out_dir=out_dir), echo=click.echo)
    click.echo("")
    targets = Targets()
    _finish(soak.report(result, targets), targets)


@bench.command("run")
@click.argument("scenario", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                default="scenarios/reach.yaml")
@click.option("--target", type=click.Choice(["mock", "mujoco", "isaac"]), default=None,
              help="Robot target [default: the scenario's].")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Runs to time.")
@click.option("--record/--no-record", default=None, help="Record a bag [default: the scenario's record].")
@click.option("--loop-seconds", type=click.FloatRange(min=0.5), default=3.0, show_default=True,
              help="Window for the nodes-alone lockstep baseline.")
def bench_run(scenario: Path, target: str | None, repeats: int, record: bool | None, loop_seconds: float) -> None:
    """Wall time of `hil run SCENARIO`: start-up vs the run, and x real time, beside baselines.

    \b
    Example:
      hil bench run scenarios/reach.yaml --repeats 3
    """
    targets = Targets()
    _finish(run_bench.report(scenario, target, repeats, record, loop_seconds, targets), targets)


@bench.command("hw")
@click.option("--seconds", type=click.FloatRange(min=2.0), default=10.0, show_default=True,
              help="Window for the rate and queue measurement.")
@click.option("--rate", type=click.FloatRange(min=1.0, max=200.0), default=25.0, show_default=True,
              help="hw_node control rate (Hz).")
@click.option("--steps", type=click.IntRange(min=2), default=20, show_default=True,
              help="Step commands for the command-to-motion latency.")
def bench_hw(seconds: float, rate: float, steps: int) -> None:
    """hw_node on the emulated arm: command/feedback rates and command-to-motion
    latency beside direct serial access and the 115200-baud line rate.

    \b
    Example:
      hil bench hw --seconds 10 --rate 25
    """
    targets = Targets()
    _finish(hw_bench.report(hw_bench.run(seconds, rate, steps), targets), targets)


@bench.command("bag")
@click.option("--seconds", type=click.FloatRange(min=0.5), default=4.0, show_default=True,
              help="Lockstep measurement window (each of without/with recorder, per round).")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Alternating without/with-recorder window pairs.")
@click.option("--messages", type=click.IntRange(min=1000), default=100_000, show_default=True,
              help="JointStates in the bag replayed at --max.")
def bench_bag(seconds: float, rounds: int, messages: int) -> None:
    """Recording cost on the lockstep loop (target < 10 %) and replay --max in msg/s (target >= 20,000).

    Exit status 1 when a target is missed.

    \b
    Example:
      hil bench bag --seconds 3 --rounds 3 --messages 50000
    """
    targets = Targets()
    _finish(bag_bench.report(seconds, rounds, messages, targets), targets)


@bench.command("sweep")
@click.argument("scenario", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                default="scenarios/smoke.yaml")
@click.option("--target", type=click.Choice(["mock", "mujoco"]), default="mock", show_default=True,
              help="Robot target of every cell.")
@click.option("--seeds", default="0..99", show_default=True, metavar="RANGE", help="Cells: one per seed.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Cells at once, for both engines [default: the number of cores].")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Keep the cells' folders here [default: a temporary folder, removed].")
def bench_sweep(scenario: Path, target: str, seeds: str, jobs: int | None, out: Path | None) -> None:
    """Cells per minute of a sweep on the local process pool and on a local Ray, in the same run,
    and Ray's scheduling delay per task (needs roarm-hil[ray]).

    Target: Ray at most 15 % slower than the local pool. Exit status 1 when a target is missed.

    \b
    Example:
      hil bench sweep scenarios/smoke.yaml --seeds 0..99
    """
    import os

    targets = Targets()
    try:
        text = sweep_bench.report(scenario.resolve(), target, parse_seeds(seeds), jobs or os.cpu_count() or 1,
                                  out.resolve() if out else None, targets)
    except (SweepError, ExecutorError) as exc:
        raise click.ClickException(str(exc)) from None
    _finish(text, targets)
