"""``hil node policy``: run a policy node as its own process."""

from __future__ import annotations

from pathlib import Path

import click

from bus.affinity import pin
from bus.cli_options import HilCommand, cpus_option, endpoint_options, load_endpoints, phases_option, spin_option
from bus.errors import Failed
from policy_node.metrics import SlaConfig
from policy_node.node import PolicyNode, PolicyNodeConfig, RobotMismatch
from policy_node.policy.load import SCRIPTED_NAMES
from policy_node.watchdog import WatchdogConfig
from schemas import messages_pb2


@click.command("policy", cls=HilCommand)
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="An ONNX policy: a model (described by MODEL.onnx.yaml beside it, its folder's policy.yaml, "
                   "or its roarm.* metadata), a policy folder, or a policy.yaml (e.g. policies/reach.onnx).")
@click.option("--scripted", type=click.Choice(list(SCRIPTED_NAMES)), default=None,
              help="A scripted policy instead of a model (see_reach looks through the camera 'front').")
@click.option("--policy", "source", default=None, metavar="SOURCE",
              help="Any policy: a model file, a policy folder, a policy.yaml, scripted:NAME, or a Python policy "
                   "as module:factory or path/to/file.py:factory (docs/policies.md).")
@click.option("--name", default="policy", show_default=True, help="Node name in heartbeats and events.")
@click.option("--deadline-ms", type=click.FloatRange(min=1.0), default=200.0, show_default=True,
              help="Hold the last measured position when no fresh state arrives for this long.")
@click.option("--budget-us", type=click.FloatRange(min=1.0), default=5000.0, show_default=True,
              help="Inference budget per state; an answer that took longer is replaced by a hold.")
@click.option("--sla-p95-us", type=click.FloatRange(min=1.0), default=2000.0, show_default=True,
              help="Alert when the recent state-receive -> command-send p95 exceeds this.")
@click.option("--sla-miss-rate", type=click.FloatRange(min=0.0, max=1.0), default=0.01, show_default=True,
              help="Alert when the recent deadline-miss rate exceeds this fraction.")
@click.option("--sla-cooldown-s", type=click.FloatRange(min=0.0), default=10.0, show_default=True,
              help="At most one alert of each kind per this many seconds.")
@click.option("--metrics-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Prometheus textfile (node_exporter textfile collector), rewritten every second.")
@click.option("--events-file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Append every event as a JSON line, obs_seq as correlation id.")
@click.option("--robot-timeout-s", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="How long to wait for the robot node to answer 'info' at start.")
@spin_option
@phases_option
@cpus_option
@endpoint_options
def policy(
    model: Path | None,
    scripted: str | None,
    source: str | None,
    name: str,
    deadline_ms: float,
    budget_us: float,
    sla_p95_us: float,
    sla_miss_rate: float,
    sla_cooldown_s: float,
    metrics_file: Path | None,
    events_file: Path | None,
    robot_timeout_s: float,
    spin_us: int,
    phases: bool,
    cpus: frozenset[int] | None,
    run_dir: Path | None,
    endpoints_file: Path | None,
) -> None:
    """Answer every robot/joint_state with a robot/joint_command.

    The same command line drives the mock sim, MuJoCo, Isaac Sim and the real
    arm: only the robot node changes. At start the policy is checked against
    the robot's info (joints, limits, control period: the rule hil run and
    hil policy inspect apply); a mismatch is refused naming the field.

    \b
    Examples:
      hil node policy --model policies/reach.onnx --run-dir /tmp/run1
      hil node policy --policy my_policy/ --run-dir /tmp/run1
      hil node policy --scripted ik --deadline-ms 100 --events-file /tmp/run1/policy.jsonl
      hil node policy --policy my_policy:make_policy --run-dir /tmp/run1
    """
    given = [s for s in (model, scripted, source) if s is not None]
    if len(given) != 1:
        raise click.UsageError(f"give exactly one of --model PATH or --scripted {'|'.join(SCRIPTED_NAMES)} "
                               "or --policy SOURCE")
    config = PolicyNodeConfig(
        source=str(model) if model is not None else f"scripted:{scripted}" if scripted is not None else str(source),
        name=name,
        watchdog=WatchdogConfig(deadline_s=deadline_ms / 1e3, budget_s=budget_us / 1e6),
        sla=SlaConfig(p95_us=sla_p95_us, miss_rate=sla_miss_rate, cooldown_s=sla_cooldown_s),
        metrics_file=metrics_file,
        events_file=events_file,
        robot_timeout_s=robot_timeout_s,
        spin_us=spin_us,
        phases=phases,
    )
    pin(cpus)  # before the model's runtime starts its threads and ZMQ its I/O thread
    endpoints = load_endpoints(run_dir, endpoints_file)
    try:
        node = PolicyNode(config, endpoints)
    except (OSError, ValueError) as exc:  # a missing file, a bad description or model: all ValueErrors
        raise Failed(f"cannot start the policy node with {config.source}: {exc}") from None
    node.node.install_signal_handlers()
    try:
        node.run()
    except RobotMismatch as exc:
        node.report(messages_pb2.Severity.ERROR, "policy.spec_mismatch", str(exc))
        raise Failed(f"policy {config.source} does not fit the robot: {exc}") from None
    finally:
        node.close()
