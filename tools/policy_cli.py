"""``hil policy``: make and inspect policies (training the shipped reach model)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bus.errors import Failed
from policy_node.policy.load import load_policy
from roarm.kinematics import sample_reachable_goal
from sim_node.backends import make_backend
from tools.training.train_reach import TrainConfig, evaluate, export, train


@click.group()
def policy() -> None:
    """Train and inspect policies.

    \b
    Example:
      hil policy train-reach --seed 0 --out policies/reach.onnx
    """


@policy.command("train-reach")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for goals, starts and weights.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("policies/reach.onnx"),
              show_default=True, help="Where to write the ONNX model.")
@click.option("--dt", type=click.FloatRange(min=0.002, max=0.1), default=0.01, show_default=True,
              help="Control period the model is made for (a multiple of MuJoCo's 2 ms step); the policy node "
                   "refuses robots with another period, e.g. --dt 0.04 for hil node hw at 25 Hz.")
@click.option("--eval-goals", type=click.IntRange(min=0), default=20, show_default=True,
              help="Random reachable goals to evaluate the result on (0 skips).")
@click.option("--tolerance-mm", type=click.FloatRange(min=0.1), default=15.0, show_default=True,
              help="Evaluation: a goal counts as reached within this distance.")
def train_reach(seed: int, out: Path, dt: float, eval_goals: int, tolerance_mm: float) -> None:
    """Train the reach MLP on MuJoCo data from the scripted:ik expert (DAgger), export ONNX.

    Runs in-process without the bus, about a minute or two on one core; the
    same seed gives the same file.

    \b
    Examples:
      hil policy train-reach --seed 0 --out policies/reach.onnx
      hil policy train-reach --seed 0 --dt 0.04 --out /tmp/reach_25hz.onnx
    """
    config = TrainConfig(seed=seed, dt=dt)
    mlp, spec = train(config, log=click.echo)
    export(mlp, spec, out, seed)
    model = load_policy(str(out))
    click.echo(f"wrote {out} (sha256 {model.model_hash[:16]}..., {out.stat().st_size} bytes)")
    if eval_goals:
        rng = np.random.default_rng(seed + 1_000_003)  # goals the training never drew
        goals = [sample_reachable_goal(rng) for _ in range(eval_goals)]
        backend = make_backend("mujoco", dt=config.dt)
        backend.connect()
        try:
            errors = evaluate(backend, model, goals, steps=round(3.0 / dt)) * 1e3  # 3 s per goal
        finally:
            backend.close()
        reached = int(np.sum(errors <= tolerance_mm))
        click.echo(f"evaluation: {reached}/{eval_goals} goals within {tolerance_mm:g} mm; "
                   f"median {np.median(errors):.1f} mm, worst {np.max(errors):.1f} mm")


@policy.command("info")
@click.argument("source")
def info(source: str) -> None:
    """Print a policy's name, hash and observation/action spec.

    \b
    Examples:
      hil policy info policies/reach.onnx
      hil policy info scripted:ik
    """
    try:
        loaded = load_policy(source)
    except (OSError, ValueError) as exc:  # a missing file, an unknown source; ModelError and SpecError are ValueErrors
        raise Failed(f"cannot load {source}: {exc}") from None
    req = loaded.requirements
    desc = getattr(loaded, "description", None)
    click.echo(f"name:        {loaded.name}")
    click.echo(f"model_hash:  {loaded.model_hash or '(scripted)'}")
    if desc is not None:
        click.echo(f"observation: {','.join(t.name for t in desc.observation)} ({desc.observation_size} values)")
        click.echo(f"action:      {desc.action.mode}, scale {list(desc.action.scale)}")
    click.echo(f"joints:      {','.join(req.joints)}")
    click.echo(f"dt:          {req.period:g} s" if req.period else "dt:          any (from the robot)")
