"""``hil policy``: make and inspect policies (training the shipped reach model)."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from bus.errors import Failed
from policy_node.policy.load import load_policy
from policy_node.policy.onnx_model import file_sha256, session_options
from roarm.kinematics import sample_reachable_goal
from sim_node.backends import make_backend
from policy_node.interface.isaaclab import import_isaaclab
from tools.training import train_isaaclab_reach as isaac
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


@policy.command("train-isaaclab-reach")
@click.option("--run", "run_dir", type=click.Path(path_type=Path, file_okay=False), default=Path("policies/isaaclab_reach"),
              show_default=True, help="The Isaac Lab run folder: its params/ describe the task; exported/policy.onnx "
                                      "is written.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for goals, starts, physics and weights.")
@click.option("--imported", type=click.Path(path_type=Path, file_okay=False),
              default=Path("policies/isaaclab_reach_imported"), show_default=True,
              help="Also import the run into this policy folder (as hil policy import isaaclab does).")
@click.option("--eval-goals", type=click.IntRange(min=0), default=20, show_default=True,
              help="Random command positions to evaluate the result on, on MuJoCo (0 skips).")
@click.option("--tolerance-mm", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Evaluation: a goal counts as reached within this distance of gripper_link.")
def train_isaaclab_reach(run_dir: Path, seed: int, imported: Path, eval_goals: int, tolerance_mm: float) -> None:
    """Train the actor of an Isaac Lab rsl_rl run folder with the project's numpy pipeline.

    The run's params/env.yaml (Isaac Lab's dump of the RoArm-M3 reach task)
    decide the observation (24 values), the actions (5 arm joints, default +
    0.5 x action) and the period (1/30 s); the actor imitates an IK expert on
    MuJoCo and is exported as rsl_rl's exporter does (obs [1, 24] ->
    actions [1, 5], ELU, opset 18). The same seed gives the same file.

    \b
    Example:
      hil policy train-isaaclab-reach --seed 0
    """
    if not (run_dir / "params" / "env.yaml").is_file():
        raise Failed(f"{run_dir}: no params/env.yaml: give an Isaac Lab run folder (logs/rsl_rl/EXPERIMENT/RUN)")
    config = isaac.IsaacTrainConfig(seed=seed)
    mlp, desc = isaac.train(run_dir, config, log=click.echo)
    model = run_dir / "exported" / "policy.onnx"
    isaac.export(mlp, model)
    click.echo(f"wrote {model} (sha256 {file_sha256(model)[:16]}..., {model.stat().st_size} bytes)")
    if imported:
        desc = import_isaaclab(run_dir, imported)
        described = imported / "policy.yaml"
        # The run as given (relative to where the command ran), not this machine's absolute path.
        described.write_text(described.read_text(encoding="utf-8").replace(str(run_dir.resolve()), str(run_dir)),
                             encoding="utf-8")
        click.echo(f"imported into {imported} (policy.yaml, policy.onnx)")
    if eval_goals:
        _, env = isaac.task(run_dir)
        adapter = isaac.Adapter(desc)
        rng = np.random.default_rng(seed + 1_000_003)
        goals = [isaac.sample_goal(rng, *isaac.command_ranges(env), adapter.default) for _ in range(eval_goals)]
        backend = isaac.mujoco_at(desc.period or 1 / 30, config.physics_substeps)
        session = onnx_session(model)
        try:
            errors = isaac.evaluate(backend, adapter, lambda obs: session.run(None, {"obs": obs[None, :]})[0][0],
                                    goals, steps=round(4.0 / backend.dt)) * 1e3
        finally:
            backend.close()
        reached = int(np.sum(errors <= tolerance_mm))
        click.echo(f"evaluation (exported model, onnxruntime): {reached}/{eval_goals} goals within {tolerance_mm:g} mm "
                   f"of gripper_link; median {np.median(errors):.1f} mm, worst {np.max(errors):.1f} mm")


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
    spec = loaded.spec
    click.echo(f"name:        {loaded.name}")
    click.echo(f"model_hash:  {loaded.model_hash or '(scripted)'}")
    click.echo(f"observation: {','.join(spec.observation)} ({spec.observation_size} values)")
    click.echo(f"joints:      {','.join(spec.joint_names)}")
    click.echo(f"action:      {spec.action_kind}, scale {list(spec.action_scale)}")
    click.echo(f"dt:          {spec.dt:g} s" if spec.dt else "dt:          any (from the robot)")


def onnx_session(path: Path) -> object:
    """An onnxruntime session of ``path`` set up like the policy node's."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])
