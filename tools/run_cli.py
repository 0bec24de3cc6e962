"""``hil run``: run a scenario against a robot target and say pass or fail."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from scenarios.launch import LaunchError
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
def run(scenario: str, policy_source: str | None, target: str | None, port: str | None, seed: int | None,
        seeds: str | None, out: Path | None, record: bool | None, jobs: int | None, progress: bool) -> None:
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
    if seed_list is not None or len(targets) > 1:
        _sweep(path, targets, seed_list or [loaded.seed if seed is None else seed], out, port, record, jobs,
               policy_source)

    try:
        report = run_scenario(loaded, RunOptions(target=targets[0], port=port, seed=seed, out=out, record=record,
                                                 progress=progress))
    except LaunchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(summary(report))
    sys.exit(report.exit_code)


def _sweep(scenario: Path, targets: list[str], seeds: list[int], out: Path | None, port: str | None,
           record: bool | None, jobs: int | None, policy: str | None) -> None:
    folder = out or Path("runs") / f"sweep-{scenario.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    click.echo(f"sweep: {len(targets)} target(s) x {len(seeds)} seed(s) into {folder}", err=True)
    code, text = run_sweep(scenario, targets, seeds, folder.resolve(), port=port, record=record, jobs=jobs,
                           policy=None if policy is None else _absolute(policy))
    click.echo(text)
    sys.exit(code)


def _absolute(source: str) -> str:
    """A policy source that means the same from another working folder (a sweep's runs)."""
    config = policy_from_source(source)
    return str(config.source)
