"""``hil run``: run a scenario against a robot target and say pass or fail."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from bus.cli_options import command_line_security, security_options
from bus.security import SecurityConfig, SecurityError
from scenarios.launch import LaunchError
from scenarios.remote import RemoteRobotError
from scenarios.report import summary
from scenarios.runner import RunOptions, run_scenario
from scenarios.schema import ScenarioError, load, policy_from_source
from scenarios.shipped import find_scenario
from scenarios.sweep import SweepError, parse_seeds, parse_targets, run_sweep


@click.command("run")
@click.argument("scenario")
@click.option("--target", default=None, metavar="TARGET[,TARGET...]",
              help="mock, mujoco, isaac or hw [default: the scenario's robot.target]; "
                   "several (comma-separated) run a sweep.")
@click.option("--policy", "policy_source", default=None, metavar="POLICY",
              help="Run this policy instead of the scenario's: a model file, a policy folder, scripted:NAME, "
                   "or module:factory (a Python policy).")
@click.option("--port", default=None, help="Serial port of the real arm (--target hw), e.g. /dev/ttyUSB0.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed [default: the scenario's seed].")
@click.option("--seeds", default=None, metavar="RANGE",
              help="Sweep over seeds: FIRST..LAST (inclusive) and/or a comma list, e.g. 0..19.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for logs, report.json, junit.xml and the bag "
                   "[default: runs/<scenario>-<target>-seed<N>-<time>].")
@click.option("--record/--no-record", default=None, help="Record the run into <out>/run.mcap "
              "[default: the scenario's record].")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Sweep: runs at once [default: the number of cores].")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Status line and milestones on stderr.")
@click.option("--endpoints", "endpoints_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The bench's endpoints description (JSON, tcp:// addresses of every role on every machine) "
                   "[default: the scenario's robot.endpoints, else ipc sockets in a fresh run folder].")
@click.option("--remote", is_flag=True,
              help="The robot already runs elsewhere, at the endpoints' robot address: connect to it, do not "
                   "start one, leave it running (as robot.remote: true).")
@security_options
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Sweep: run cells as local processes, or as Ray tasks (pip install 'roarm-hil[ray]').")
@click.option("--address", default=None, metavar="HOST:PORT",
              help="--executor ray: the head of a running Ray cluster [default: start a local Ray].")
@click.option("--confidence", type=click.FloatRange(0.5, 1.0, max_open=True), default=None,
              help="Sweep: confidence of the success-rate intervals [default: the scenario's "
                   "success_rate.confidence, else 0.95].")
def run(scenario: str, policy_source: str | None, target: str | None, port: str | None, seed: int | None,
        seeds: str | None, out: Path | None, record: bool | None, jobs: int | None, progress: bool,
        endpoints_file: Path | None, remote: bool, executor: str, address: str | None,
        confidence: float | None) -> None:
    """Run SCENARIO (a YAML file, or the name of a shipped one: reach, smoke,
    track, ...): start the nodes, send the goals, check the assertions, stop
    everything, write report.json and junit.xml.

    Exit status: 0 pass, 1 fail, 2 broken scenario or set-up, 130 interrupted.

    \b
    Examples:
      hil run scenarios/reach.yaml                      # MuJoCo, the default target
      hil run reach --target mock                       # a shipped scenario, from any folder
      hil run scenarios/reach.yaml --policy policies/isaaclab_reach_imported
      hil run scenarios/smoke.yaml --target mock --out /tmp/smoke
      hil run scenarios/track.yaml --target hw --port /dev/ttyUSB0
      hil run scenarios/reach.yaml --seeds 0..19 --target mock,mujoco
      hil run scenarios/smoke.yaml --remote --endpoints bench.json --keys ~/roarm-keys   # docs/bench.md
      hil run scenarios/smoke.yaml --seeds 0..99 --target mock --executor ray
      hil run scenarios/smoke.yaml --seeds 0..99 --target hw --executor ray --address head:6379
    """
    try:
        path = find_scenario(scenario)
        loaded = load(path)
        if policy_source is not None:
            loaded = replace(loaded, policy=policy_from_source(policy_source))
        targets = parse_targets(target) if target else [loaded.robot.target]
        seed_list = parse_seeds(seeds) if seeds else None
    except (ScenarioError, SweepError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if seed_list is not None and seed is not None:
        click.echo("give --seed or --seeds, not both", err=True)
        sys.exit(2)
    is_remote = remote or loaded.robot.remote
    if is_remote and target is None:
        targets = ["remote"]  # whatever the running robot is
    override = command_line_security(SecurityConfig())
    security = None if override == SecurityConfig() else override
    bench = endpoints_file or loaded.robot.endpoints
    if address and executor != "ray":
        raise click.UsageError("--address is for --executor ray")
    if seed_list is not None or len(targets) > 1 or executor == "ray":
        passed = _bench_args(endpoints_file, security, remote)
        if bench is not None and (jobs or 0) != 1:
            click.echo("sweep on the bench's fixed tcp:// endpoints: one run at a time (--jobs 1)", err=True)
            jobs = 1
        _sweep(path, targets, seed_list or [loaded.seed if seed is None else seed], out, port, record, jobs,
               passed, executor, address, confidence, policy_source)

    try:
        report = run_scenario(loaded, RunOptions(target=None if targets == ["remote"] else targets[0],
                                                 port=port, seed=seed, out=out, record=record, progress=progress,
                                                 endpoints_file=endpoints_file, security=security, remote=remote))
    except (LaunchError, RemoteRobotError, SecurityError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(summary(report))
    sys.exit(report.exit_code)


def _bench_args(endpoints_file: Path | None, security: SecurityConfig | None, remote: bool) -> list[str]:
    """The bench options each run of a sweep gets again."""
    args = ["--endpoints", str(endpoints_file.resolve())] if endpoints_file else []
    if security is not None and security.keys is not None:
        args += ["--keys", str(security.keys)]
    if security is not None and security.insecure:
        args.append("--insecure")
    return args + (["--remote"] if remote else [])


def _sweep(scenario: Path, targets: list[str], seeds: list[int], out: Path | None, port: str | None,
           record: bool | None, jobs: int | None, extra: list[str], executor: str = "local",
           address: str | None = None, confidence: float | None = None, policy: str | None = None) -> None:
    folder = out or Path("runs") / f"sweep-{scenario.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    click.echo(f"sweep: {len(targets)} target(s) x {len(seeds)} seed(s) into {folder} (executor {executor})",
               err=True)
    code, text = run_sweep(scenario.resolve(), targets, seeds, folder.resolve(), port=port, record=record, jobs=jobs,
                           extra=extra, executor=executor, address=address, confidence=confidence,
                           policy=None if policy is None else _absolute(policy))
    click.echo(text)
    sys.exit(code)


def _absolute(source: str) -> str:
    """A policy source that means the same from another working folder (a sweep's runs)."""
    config = policy_from_source(source)
    return str(config.source)
