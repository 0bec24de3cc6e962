"""The command line of each node of a run, from the scenario and the chosen target.

Only the robot's command line depends on the target; the policy's is the
same for mock, MuJoCo, Isaac Sim and the real arm (the point of the project).
A policy given as ``policy.command`` (a process in any language that speaks
the bus contract) is started as written, with its placeholders filled:
``{run_dir}`` (the run folder, also in ``$HIL_RUN_DIR``), ``{endpoints}``
(its ``endpoints.json``) and ``{scenario_dir}``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bus.endpoints import ENDPOINTS_FILE
from bus.errors import HilError
from hw_node.port_lock import PortBusyError, ensure_free
from policy_node.policy.description import PolicyDescriptionError
from policy_node.policy.load import load_description
from policy_node.policy.scripted import DEFAULT_DT
from scenarios.schema import PolicyConfig, Scenario


class LaunchError(HilError, ValueError):
    """The run cannot be set up as asked (e.g. hw without a port)."""


@dataclass(frozen=True)
class RunSettings:
    """What one run uses, after command-line overrides of the scenario."""

    target: str
    mode: str
    seed: int
    port: str | None
    record: bool
    run_dir: Path
    out_dir: Path
    # The robot already runs elsewhere: nothing is started for it.
    remote: bool = False
    # The robot's control period; None: the scenario's robot.dt, else the policy's period (control_period).
    dt: float | None = None


@dataclass(frozen=True)
class NodeLaunch:
    name: str
    role: str
    argv: list[str]
    env: dict[str, str] | None = None


def policy_period(policy: PolicyConfig) -> float | None:
    """The control period a model file or policy folder was made for (its description), or None.

    A description that does not validate is a LaunchError with its file:line: field messages.
    """
    if policy.path is None:
        return None
    try:
        return load_description(policy.path).period
    except PolicyDescriptionError as exc:
        raise LaunchError(f"policy {policy.path}: {exc}") from None


def control_period(scenario: Scenario) -> float:
    """``robot.dt`` when the scenario sets it, else the policy's period, else DEFAULT_DT."""
    if scenario.robot.dt is not None:
        return scenario.robot.dt
    return policy_period(scenario.policy) or DEFAULT_DT


def hil_command() -> list[str]:
    """``hil`` next to the running interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).with_name("hil")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("hil")
    if found:
        return [found]
    raise LaunchError("cannot find the 'hil' command next to this Python or on PATH; install the project "
                      "(pip install -e .)")


def node_launches(scenario: Scenario, settings: RunSettings) -> list[NodeLaunch]:
    """Recorder (if recording), robot (unless it is remote), a real camera, policy: the order they start in.

    Every node reads the run folder's endpoints.json, so nodes started for a
    run on tcp:// endpoints (with keys) need no other option.
    """
    hil = hil_command()
    run = ["--run-dir", str(settings.run_dir)]
    launches = []
    if settings.record:
        meta = [f"scenario={scenario.name}", f"target={settings.target}", f"seed={settings.seed}",
                f"scenario_sha256={scenario.sha256}"]
        argv = [*hil, "bag", "record", "-o", str(settings.out_dir / "run.mcap")]
        for item in meta:
            argv += ["--meta", item]
        if any(camera.encoding == "raw" for camera in scenario.robot.cameras):
            argv.append("--raw-images")  # the scenario asked for exact pixels: keep them (check-policy is exact)
        launches.append(NodeLaunch("recorder", "recorder", argv + run))
    if not settings.remote:
        launches.append(NodeLaunch("robot", "robot", robot_argv(hil, scenario, settings) + run))
    launches += camera_launches(hil, scenario, settings, run)
    launches.append(policy_launch(hil, scenario, settings))
    return launches


def policy_launch(hil: list[str], scenario: Scenario, settings: RunSettings) -> NodeLaunch:
    """``hil node policy --policy SOURCE``, or the scenario's own ``policy.command``."""
    policy = scenario.policy
    if not policy.command:
        argv = [*hil, "node", "policy", "--policy", str(policy.source), *policy.args,
                "--run-dir", str(settings.run_dir)]
        return NodeLaunch("policy", "policy", argv)
    values = {"run_dir": str(settings.run_dir), "endpoints": str(settings.run_dir / ENDPOINTS_FILE),
              "scenario_dir": str(scenario.path.resolve().parent)}
    argv = [_fill(item, values) for item in policy.command]
    if "/" not in argv[0] and shutil.which(argv[0]) is None:
        raise LaunchError(f"policy.command: {argv[0]!r} is not a program on PATH (give its path, relative to the "
                          "scenario file or absolute)")
    return NodeLaunch("policy", "policy", argv, env={"HIL_RUN_DIR": str(settings.run_dir)})


def _fill(item: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        item = item.replace("{" + name + "}", value)
    return item


def robot_argv(hil: list[str], scenario: Scenario, settings: RunSettings) -> list[str]:
    extra = list(scenario.robot.options.get(settings.target, ()))
    kind = "hw" if settings.target == "hw" else "sim"
    command = list(scenario.robot.command.get(settings.target, ())) or [*hil, "node", kind]
    if kind == "hw":
        if not settings.port:
            raise LaunchError("target hw needs a serial port: --port /dev/ttyUSB0 (or robot.port in the scenario)")
        try:
            ensure_free(settings.port)  # a hand-started hw node on it: refuse before starting anything
        except PortBusyError as exc:
            raise LaunchError(str(exc)) from None
        return [*command, "--port", settings.port, *extra]
    dt = settings.dt if settings.dt is not None else control_period(scenario)
    cameras = [a for spec in scenario.robot.cameras for a in ("--camera", spec.to_compact())]
    return [*command, "--backend", settings.target, "--mode", settings.mode,
            "--dt", repr(dt), "--seed", str(settings.seed), *cameras, *extra]


def camera_launches(hil: list[str], scenario: Scenario, settings: RunSettings, run: list[str]) -> list[NodeLaunch]:
    """On the real arm, ``hil node camera`` for the scenario's camera (a simulator renders its own).

    The camera role has one PUB, so one real camera per run; each must say
    which ``device`` (a V4L2 device or a video file) it reads.
    """
    cameras = scenario.robot.cameras
    if settings.target != "hw" or not cameras:
        return []
    missing = [spec.name for spec in cameras if not spec.device]
    if missing:
        raise LaunchError(f"robot.cameras {', '.join(missing)}: a camera on the real arm needs device: "
                          "(/dev/video0 or a video file); a simulator renders cameras without one")
    if len(cameras) > 1:
        raise LaunchError(f"robot.cameras: one real camera per run (the camera role has one PUB), got "
                          f"{', '.join(spec.name for spec in cameras)}")
    spec = cameras[0]
    argv = [*hil, "node", "camera", "--device", str(spec.device), "--name", spec.name, "--width", str(spec.width),
            "--height", str(spec.height), "--rate", repr(spec.rate_hz), "--encoding", spec.encoding,
            "--fov", repr(spec.fov_deg)]
    return [NodeLaunch("camera", "camera", argv + run)]
