"""``hil bag``: record the bus into MCAP files and work with them afterwards.

matplotlib (plot) and onnxruntime (check-policy with a model) are imported
only when a command needs them, by the modules that use them, so ``hil
--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
import zmq

from bus.cli_options import endpoint_options, load_endpoints
from bus.topics import JOINT_STATE, TOPICS, TopicNameError, camera_of, check_camera_name, spec
from scenarios.executors import ExecutorError, load_ray
from tools.bag.check_many import BagOutcome, check_local, exit_code, summary
from tools.bag.check_policy import check_policy, format_result
from tools.bag.export import export_csv
from tools.bag.frames import ImageSelection
from tools.bag.info import bag_info, format_info
from tools.bag.plot import plot_bag
from tools.bag.provenance import ProvenanceError, parse_meta, provenance
from tools.bag.reader import BagReader
from tools.bag.recorder import RecorderConfig
from tools.bag.recorder import record as run_recorder
from tools.bag.replay import ReplayConfig, count_states, live_policy
from tools.bag.replay import replay as run_replay
from tools.bag.video import export_video
from tools.bag.writer import WriterConfig
from tools.viz.scene import TRANSFORMS_HZ


@click.group()
def bag() -> None:
    """Record runs into MCAP bags; inspect, plot, export and replay them.

    \b
    Example:
      hil bag record -o run.mcap --meta scenario=reach --run-dir /tmp/run1
      hil bag info run.mcap
    """


def _split_topics(values: tuple[str, ...]) -> tuple[str, ...]:
    """--topics may be repeated and/or comma-separated."""
    return tuple(t for v in values for t in v.split(",") if t)


@bag.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The MCAP file to write (its folder must exist).")
@click.option("--topics", multiple=True, help="Record only these topics (repeat or comma-separate) [default: all].")
@click.option("--meta", multiple=True, metavar="KEY=VALUE",
              help="Provenance for the 'roarm-hil' metadata record (scenario, policy_sha256, seed, ...).")
@click.option("--meta-json", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="A flat JSON object of provenance; --meta pairs win over it.")
@click.option("--flush-interval", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Seconds between chunk flushes: what a SIGKILL can lose at most. Each chunk costs "
                   "~1-2 KB of memory until the bag closes (its index), so hours-long recordings "
                   "may want more.")
@click.option("--name", default="recorder", show_default=True, help="Node name on the bus.")
@click.option("--nice", type=click.IntRange(min=0, max=19), default=10, show_default=True,
              help="Lower the recorder's CPU priority by this much so the loop it records goes first (0: off).")
@click.option("--scene/--no-scene", default=True, show_default=True,
              help="Add what Foxglove's 3D panel draws: link transforms from the measured joints, the URDF, "
                   "goal spheres, events as logs (docs/foxglove.md).")
@click.option("--scene-hz", type=click.FloatRange(min=0), default=TRANSFORMS_HZ, show_default=True,
              help="Link transforms per second of robot time at most (the first state after a reset and the "
                   "last state always); 0: one per state.")
@click.option("--image-topics", multiple=True, metavar="CAMERA|TOPIC",
              help="Record only these cameras' frames: camera names or frame topics such as camera/wrist/image "
                   "(repeat or comma-separate) [default: every camera].")
@click.option("--raw-images", is_flag=True,
              help="Store raw frames as they came instead of as JPEG (exact pixels, for check-policy of a vision "
                   "policy; about 20x larger).")
@endpoint_options
def record(output: Path, topics: tuple[str, ...], meta: tuple[str, ...], meta_json: Path | None,
           flush_interval: float, name: str, nice: int, scene: bool, scene_hz: float, image_topics: tuple[str, ...],
           raw_images: bool, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Record every bus topic of a run into an MCAP bag until Ctrl-C, SIGTERM or `shutdown`.

    Answers ping/info/shutdown as role "recorder". Each (topic, sender) becomes
    a channel with its protobuf schema embedded; seq gaps are counted as drops.
    Camera frames are stored as Foxglove images (the image panel shows them):
    raw frames as JPEG on camera/<name>/compressed unless --raw-images.

    \b
    Example:
      hil bag record -o /tmp/run1/run.mcap --run-dir /tmp/run1 \\
          --meta scenario=reach --meta seed=3
    """
    endpoints = load_endpoints(run_dir, endpoints_file)
    for topic in _split_topics(topics):
        if spec(topic) is None:
            click.echo(f"note: {topic!r} is not a topic of the contract ({', '.join(TOPICS)}, camera/<name>/...)",
                       err=True)
    wanted = _split_topics(image_topics)
    for item in wanted:
        try:
            check_camera_name(item) if camera_of(item) is None else None
        except TopicNameError as exc:
            raise click.BadParameter(f"{exc} (or give a frame topic such as camera/wrist/image)",
                                     param_hint="--image-topics") from None
    try:
        facts = provenance(parse_meta(meta, meta_json))
    except ProvenanceError as exc:
        raise click.UsageError(str(exc)) from None
    config = RecorderConfig(output, endpoints, facts, _split_topics(topics), name,
                            WriterConfig(flush_interval_s=flush_interval), nice=nice, scene=scene, scene_hz=scene_hz,
                            images=ImageSelection(wanted, raw_images))
    try:
        result = run_recorder(config)
    except zmq.ZMQError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"recorded {result.received} messages into {output} ({result.dropped} dropped); "
               f"stopped: {result.stop_reason}", err=True)
    for stream, counts in result.streams.items():
        if counts["dropped"]:
            click.echo(f"  {stream}: {counts['dropped']} dropped of {counts['count'] + counts['dropped']}", err=True)
    if result.error:
        raise click.ClickException(result.error)


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(bag_file: Path, as_json: bool) -> None:
    """Show topics, counts, rates, duration, dropped messages and provenance of a bag.

    Works on bags cut short by a crash or SIGKILL (it says so).

    \b
    Example:
      hil bag info run.mcap
    """
    report = bag_info(bag_file)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_info(report))


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="PNG (or .svg) to write [default: the bag's name with .png].")
@click.option("--title", default=None, help="Figure title [default: the bag's file name].")
def plot(bag_file: Path, output: Path | None, title: str | None) -> None:
    """Plot distance to each goal (mm, tolerance band), joints, latency and events on the robot's clock.

    \b
    Example:
      hil bag plot run.mcap -o run.png
    """
    output = output or bag_file.with_suffix(".png")
    trace = plot_bag(bag_file, output, title)
    commands = sum(c is not None for c in trace.command)
    click.echo(f"wrote {output}: {len(trace)} states, {commands} commands, {len(trace.goals)} goals")


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--csv", "csv_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the CSV files (created if missing), one per topic.")
@click.option("--video", "video_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for the videos (created if missing): one MP4 (mp4v) per camera.")
@click.option("--topics", multiple=True,
              help="Only these topics (CSV) or cameras (video) (repeat or comma-separate) [default: all].")
def export(bag_file: Path, csv_dir: Path | None, video_dir: Path | None, topics: tuple[str, ...]) -> None:
    """Export a bag as one CSV per topic (fields flattened: position.0, tcp.x, ...) and/or one MP4 per camera.

    \b
    Examples:
      hil bag export run.mcap --csv run_csv/
      hil bag export run.mcap --video run_video/     # wrist.mp4, top.mp4, ...
    """
    if csv_dir is None and video_dir is None:
        raise click.UsageError("say what to export: --csv DIR and/or --video DIR")
    wanted = _split_topics(topics)
    if csv_dir is not None:
        try:
            written = export_csv(bag_file, csv_dir, wanted)
        except OSError as exc:
            raise click.ClickException(f"cannot write CSV files into {csv_dir}: {exc.strerror or exc}") from None
        if not written:
            raise click.ClickException(f"no messages{' on ' + ', '.join(topics) if topics else ''} in {bag_file}")
        for topic, (path, count) in written.items():
            click.echo(f"{topic}: {count} rows -> {path}")
    if video_dir is not None:
        cameras = tuple(parts[0] if (parts := camera_of(t)) else t for t in wanted)
        try:
            videos = export_video(bag_file, video_dir, cameras)
        except OSError as exc:
            raise click.ClickException(f"cannot write videos into {video_dir}: {exc.strerror or exc}") from None
        for video in videos:
            skipped = f", {video.skipped} frames that do not decode left out" if video.skipped else ""
            click.echo(f"{video.topic}: {video.frames} frames {video.size[0]}x{video.size[1]} at {video.fps:.2f} "
                       f"fps -> {video.path}{skipped}")


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--rate", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Speed factor on the recorded timing (2.0 = twice as fast).")
@click.option("--max", "as_fast", is_flag=True, help="Ignore the recorded timing (and --rate): as fast as possible.")
@click.option("--topics", multiple=True,
              help="Replay these topics, from whichever role recorded them (repeat or comma-separate) "
                   "[default: robot and runner topics except heartbeats and events].")
@click.option("--wait-subscribers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Before the first message, wait until each bound PUB has this many subscribers.")
@click.option("--wait-timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Give up waiting for subscribers after this many seconds (exit 1).")
@click.option("--settle", type=click.FloatRange(min=0.0), default=0.5, show_default=True,
              help="Seconds to pause after binding (subscriptions travel) and after the last message.")
@endpoint_options
def replay(bag_file: Path, rate: float, as_fast: bool, topics: tuple[str, ...], wait_subscribers: int,
           wait_timeout: float, settle: float, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Publish a bag back on the bus in place of the robot and runner (drive a policy from a bag).

    Binds the PUB endpoint of each role whose topics it replays (robot topics
    -> robot's PUB, task/goal -> runner's PUB) and answers the robot's
    ping/info/shutdown, so do not run it beside a live robot or runner.
    Refuses a bag whose schema is incompatible with this code.

    \b
    Examples:
      hil bag replay run.mcap --run-dir /tmp/run2            # original timing
      hil bag replay run.mcap --max --wait-subscribers 1     # as fast as possible
    """
    config = ReplayConfig(bag_file, load_endpoints(run_dir, endpoints_file), None if as_fast else rate,
                          _split_topics(topics), wait_subscribers, wait_timeout, settle)
    policy = None
    try:
        if as_fast:
            ctx = zmq.Context()
            try:
                policy = live_policy(config.endpoints, ctx)
            finally:
                ctx.term()
            states = count_states(BagReader(bag_file).scan(), config.topics) if policy is not None else 0
            if policy is not None and states:
                click.echo(f"warning: {policy.warning(states)}", err=True)
        result = run_replay(config)
    except zmq.ZMQError as exc:
        raise click.ClickException(str(exc)) from None
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    topics_sent = ", ".join(f"{t} {n}" for t, n in sorted(result.per_topic.items()))
    click.echo(f"replayed {result.sent} messages as {'+'.join(result.roles)} in {result.elapsed_s:.3f} s "
               f"({result.rate_hz:,.0f} msg/s): {topics_sent}; stopped: {result.stop_reason}")
    states = result.per_topic.get(JOINT_STATE, 0)
    if result.answered is not None and (result.answered or policy is not None) and states:
        dropped = " (the rest were dropped: see the warning above)" if policy is not None and as_fast else ""
        click.echo(f"the policy answered {result.answered} of {states} states{dropped}")


@bag.command("check-policy")
@click.argument("bag_files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--model", "--policy", "source", required=True,
              help="The policy to check: a model file, a policy folder, a policy.yaml, "
                   "scripted:hold|waypoints|ik|see_reach or module:factory.")
@click.option("--atol", type=click.FloatRange(min=0.0), default=1e-6, show_default=True,
              help="Largest per-joint difference (rad) that still counts as the same command.")
@click.option("--dt", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Control period (s) for scripted policies [default: the bag's].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
# -- many bags at once (tools/bag/check_many.py) --
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Several bags: a local process pool, or Ray tasks (pip install 'roarm-hil[ray]').")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="--executor ray: the head of a running Ray cluster [default: start a local Ray].")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Several bags: checks at once [default: the cores, or the cluster's CPUs].")
# -- end many bags --
def check_policy_cmd(bag_files: tuple[Path, ...], source: str, atol: float, dt: float | None, as_json: bool,
                     executor: str, address: str | None, jobs: int | None) -> None:
    """Feed a bag's recorded states and goals to a policy and compare its commands with the recorded ones.

    Deterministic (no timing): commands are matched to states by obs_seq,
    watchdog holds are skipped. Exits 1 when any joint differs by more than
    --atol, naming the first diverging step.

    Several bags are checked in parallel (--executor local or ray) with one
    summary; exit 2 if any bag could not be checked, else 1 if any fails.

    \b
    Examples:
      hil bag check-policy runs/reach/run.mcap --model policies/reach.onnx
      hil bag check-policy runs/sweep-*/*/run.mcap --model policies/reach.onnx --executor ray
    """
    if len(bag_files) > 1 or executor == "ray":
        _check_many(list(bag_files), source, atol, dt, as_json, executor, address, jobs)
    if address:
        raise click.UsageError("--address is for --executor ray")
    bag_file = bag_files[0]
    result = check_policy(bag_file, source, atol, dt)
    if as_json:
        first = result.first
        click.echo(json.dumps({
            "ok": result.ok, "policy": result.policy, "model_hash": result.model_hash, "steps": result.steps,
            "holds_skipped": result.holds_skipped, "holds_replayed": result.holds_replayed,
            "late_goal": result.late_goal,
            "diverging_steps": result.diverging_steps,
            "max_error": [float(e) if np.isfinite(e) else None for e in result.max_error], "atol": result.atol,
            "first_divergence": None if first is None else {
                "step": first.step, "obs_seq": first.obs_seq, "time_s": first.time_s, "joint": first.joint,
                "recorded": first.recorded, "replayed": first.replayed},
            "notes": result.notes}))
    else:
        click.echo(format_result(result, bag_file))
    sys.exit(0 if result.ok else 1)


def _check_many(bags: list[Path], source: str, atol: float, dt: float | None, as_json: bool, executor: str,
                address: str | None, jobs: int | None) -> None:
    """Many bags, one summary; exits 0 all pass, 1 any diverges, 2 any could not be checked."""

    def echo(outcome: BagOutcome) -> None:
        click.echo(f"{outcome.bag}: {outcome.verdict} ({outcome.wall_s:.1f} s)", err=True)

    try:
        if executor == "ray":
            ray_side = load_ray("tools.bag.check_many_ray")
            settings = load_ray("scenarios.ray_session").RaySettings(address=address, num_cpus=jobs)
            outcomes = ray_side.check_on_ray(bags, source, atol, dt, settings, jobs, echo)
        else:
            outcomes = check_local(bags, source, atol, dt, jobs, echo)
    except ExecutorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    order = {str(b): i for i, b in enumerate(bags)}
    outcomes.sort(key=lambda o: order.get(o.bag, len(order)))
    if as_json:
        click.echo(json.dumps({"ok": exit_code(outcomes) == 0, "exit_code": exit_code(outcomes), "policy": source,
                               "atol": atol, "executor": executor, "bags": [o.to_dict() for o in outcomes]}))
    else:
        click.echo(summary(outcomes, source, atol, executor))
    sys.exit(exit_code(outcomes))
