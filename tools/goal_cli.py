"""``hil goal send``: one goal for nodes started by hand (scenarios/hand_goal.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import zmq

from bus.cli_options import endpoint_options, load_endpoints
from scenarios.checker import ScenarioError
from scenarios.hand_goal import HandGoalError, send_goal
from scenarios.schema import goal_from_dict


@click.group()
def goal() -> None:
    """Send goals to a policy and robot started by hand.

    \b
    Example:
      hil goal send --tcp 0.25 0.1 0.2
    """


@goal.command()
@click.option("--tcp", "tcp", type=float, nargs=3, default=None, metavar="X Y Z",
              help="Cartesian target of the tool centre point, metres in the world frame.")
@click.option("--joints", "joints", type=float, nargs=6, default=None, metavar="J1..J6",
              help="Joint target, radians: base shoulder elbow wrist roll gripper.")
@click.option("--gripper", type=float, default=None, help="Gripper opening (rad) with --tcp [default: as it is].")
@click.option("--tolerance", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Reached within this much: mm for --tcp [10], rad for --joints [0.05].")
@click.option("--timeout", type=click.FloatRange(min=0.0, min_open=True), default=10.0, show_default=True,
              help="Seconds (robot clock) to reach it.")
@click.option("--hold", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Seconds it must stay within tolerance to count.")
@click.option("--id", "goal_id", default="hand", show_default=True, help="Goal id (in the policy's logs and bags).")
@endpoint_options
def send(tcp: tuple[float, float, float] | None, joints: tuple[float, ...] | None, gripper: float | None,
         tolerance: float | None, timeout: float, hold: float, goal_id: str, run_dir: Path | None,
         endpoints_file: Path | None) -> None:
    """Publish one goal on task/goal, as `hil run` would, to a robot and a
    policy started by hand; re-send it until the robot's states show it
    reached (or --timeout), then print how close the arm came.

    Exit 0 reached, 1 not reached, 2 no robot, policy or states (it says why).
    It stands in for the runner, so not beside a `hil run` of the same run folder.

    \b
    Examples:
      hil node sim --backend mujoco --mode realtime &
      hil node policy --model policies/reach.onnx &
      hil goal send --tcp 0.25 0.1 0.2
      hil goal send --joints 0 0 1.57 0 0 0 --tolerance 0.02
    """
    if (tcp is None) == (joints is None):
        raise click.UsageError("give the target: --tcp X Y Z or --joints J1..J6 (one of them)")
    data: dict[str, object] = {"id": goal_id, "timeout_s": timeout, "hold_s": hold}
    if tcp is not None:
        data["tcp"] = list(tcp)
        if tolerance is not None:
            data["tolerance_mm"] = tolerance
        if gripper is not None:
            data["gripper"] = gripper
    else:
        if gripper is not None:
            raise click.UsageError("--gripper goes with --tcp; with --joints the gripper is the sixth joint")
        data["joints"] = list(joints or ())
        if tolerance is not None:
            data["tolerance_rad"] = tolerance
    try:
        spec = goal_from_dict(data, "hil goal send")
    except ScenarioError as exc:
        raise click.UsageError("; ".join(_as_options(e) for e in exc.errors)) from None
    endpoints = load_endpoints(run_dir, endpoints_file)
    try:
        outcome = send_goal(endpoints, spec)
    except HandGoalError as exc:
        click.echo(f"hil goal send: {exc}", err=True)
        sys.exit(exc.exit_code)
    except zmq.ZMQError as exc:
        click.echo(f"hil goal send: {exc} (a `hil run` or another `hil goal send` uses this run folder)", err=True)
        sys.exit(2)
    click.echo(outcome.text())
    sys.exit(0 if outcome.reached else 1)


_OPTIONS = {"tcp": "--tcp", "joints": "--joints", "gripper": "--gripper", "tolerance_mm": "--tolerance",
            "tolerance_rad": "--tolerance", "timeout_s": "--timeout", "hold_s": "--hold", "id": "--id"}


def _as_options(error: str) -> str:
    """A scenario-style error ("hil goal send:1: goals[0].joints[2]: ...") in terms of the options."""
    parts = error.split(": ", 2)
    if len(parts) < 3:
        return error
    where, text = parts[1], parts[2]
    field = where.removeprefix("goals[0]").lstrip(".")
    name = field.split("[")[0].split(".")[0]
    option = _OPTIONS.get(name)
    return f"{option}{field[len(name):]}: {text}" if option else error
