"""``hil policy``: bring, describe, inspect and make policies (training the shipped reach model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import numpy as np

from bus.errors import Failed, HilError
from policy_node.policy.isaaclab import DEFAULT_ROOT_BODY, ROOT_BODIES, import_isaaclab
from policy_node.policy.load import load_policy
from policy_node.policy.onnx_model import ModelError, file_sha256, open_session
from roarm.kinematics import sample_reachable_goal
from sim_node.backends import make_backend
from tools.policy_inspect import ROBOTS, inspect
from tools.policy_template import template
from tools.training import train_isaaclab_reach as isaac
from tools.training.train_reach import TrainConfig, evaluate, export, train


@click.group()
def policy() -> None:
    """Bring, describe, inspect and train policies.

    \b
    Examples:
      hil policy import isaaclab logs/rsl_rl/roarm_reach/2025-01-01_12-00-00 --out my_policy
      hil policy init exported/policy.onnx --out my_policy
      hil policy inspect my_policy --against mujoco
      hil policy train-reach --seed 0 --out policies/reach.onnx
    """


@policy.group("import")
def import_() -> None:
    """Turn a policy trained elsewhere into a policy folder (model + policy.yaml)."""


@import_.command("isaaclab")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The policy folder to write (policy.yaml + policy.onnx).")
@click.option("--root-body", type=click.Choice(ROOT_BODIES), default=DEFAULT_ROOT_BODY, show_default=True,
              help="The articulation root the pose command was expressed in: world (the URDF's first link, "
                   "what Isaac Sim's URDF importer makes the root) or base_link (0.0701 m higher).")
def import_isaaclab_cmd(run_dir: Path, out_dir: Path, root_body: str) -> None:
    """An Isaac Lab rsl_rl run folder (params/env.yaml, params/agent.yaml, exported/policy.onnx).

    The observation terms, the joint position action, the default pose and
    the period (sim.dt x decimation) are read from the run's own dump; a term
    that has no equivalent here is an error naming it, and nothing is written.

    \b
    Example:
      hil policy import isaaclab logs/rsl_rl/roarm_reach/2025-01-01_12-00-00 --out my_policy
      hil policy inspect my_policy --against mujoco
    """
    desc = import_isaaclab(run_dir, out_dir, root_body)
    click.echo(f"wrote {out_dir / 'policy.yaml'} and {out_dir / 'policy.onnx'}: {desc.observation_size} observation "
               f"values, {desc.action_size} joints ({', '.join(desc.joints)}), period "
               f"{desc.period:g} s" if desc.period else "period: any")
    click.echo(f"check it with: hil policy inspect {out_dir} --against mujoco")


@policy.command("init")
@click.argument("model", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The policy folder to write: policy.yaml, and the model copied beside it.")
@click.option("--force", is_flag=True, help="Overwrite an existing policy.yaml.")
def init(model: Path, out_dir: Path, force: bool) -> None:
    """Write a commented policy.yaml template for MODEL from its input and output shapes.

    The tensor names, batch, dtype and joint count come from the model; the
    observation terms, action mode and period are TODOs to complete.

    \b
    Example:
      hil policy init exported/policy.onnx --out my_policy
    """
    if not model.is_file():
        raise HilError(f"{model}: no such model file")
    target = out_dir / "policy.yaml"
    if target.exists() and not force:
        raise HilError(f"{target} exists: edit it, or pass --force to overwrite it")
    try:
        text = template(model, model.name)
    except ModelError as exc:
        raise Failed(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / model.name).resolve() != model.resolve():
        shutil.copyfile(model, out_dir / model.name)
    target.write_text(text, encoding="utf-8")
    click.echo(f"wrote {target}: complete its TODOs, then: hil policy inspect {out_dir} --against mujoco")


@policy.command("inspect")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--against", type=click.Choice(ROBOTS), default=None,
              help="Build this robot in-process, check the policy against it and run one real observation "
                   "through the model.")
def inspect_cmd(source: Path, against: str | None) -> None:
    """Print a policy's tensors, observation layout, action mapping and period; find every mismatch.

    SOURCE is a policy folder, a policy.yaml / MODEL.onnx.yaml, or a model
    file. Exits 1 when anything would stop a run, each problem with its fix.

    \b
    Examples:
      hil policy inspect my_policy
      hil policy inspect policies/reach.onnx --against mock
    """
    found = inspect(source, against)
    for line in found.lines:
        click.echo(line)
    for warning in found.warnings:
        click.echo(f"warning: {warning}")
    for error in found.errors:
        click.echo(f"problem: {error}")
    if found.errors:
        raise Failed(f"{len(found.errors)} problem(s) with {source}: fix them before a run")
    click.echo("ok: no problems found" + (f" against {against}" if against else ""))


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
        session = open_session(model)
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
    except (OSError, ValueError) as exc:  # a missing file, an unknown source, a bad description or model
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
