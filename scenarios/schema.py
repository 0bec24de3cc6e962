"""Scenario files: what they may contain, and their validated form (dataclasses).

``load(path)`` reads a YAML scenario and returns a ``Scenario`` or raises
``ScenarioError`` listing every problem as ``file:line: field: what is wrong``
(for example ``scenarios/x.yaml:12: goals[2].timeout_s: expected a number > 0,
got "soon"``). docs/scenarios.md is the reference of every field.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bus.yamlsource import Source, YamlError, child, parse
from policy_node.policy.load import SCRIPTED_NAMES
from policy_node.policy.python import is_python_source
from policy_node.policy.scripted import DEFAULT_DT
from roarm.camera import FIELDS as CAMERA_FIELDS
from roarm.camera import CameraSpec, CameraSpecError
from roarm.joints import LOWER, NAMES, POSES, UPPER
from roarm.kinematics import BODY_NAMES
from scenarios.checker import MISSING, Checker, ScenarioError
from sim_node.backend import SCENE_OBJECTS

TARGETS = ("mock", "mujoco", "isaac", "hw")
# Colours of the scene's target cubes (sim_node/models/roarm_m3.xml): what a visual goal may ask for.
VISUAL_COLOURS = ("red", "green", "blue")
SIM_TARGETS = ("mock", "mujoco", "isaac")
MODES = ("lockstep", "realtime")
KILLABLE = ("policy",)
# Bodies a tcp goal may name: the tool centre point or a link of the URDF (hand_tcp is the tcp).
GOAL_BODIES = ("tcp", *(b for b in BODY_NAMES if b not in ("hand_tcp", "world")))
RANDOMIZATION_FIELDS = ("mass_scale", "damping_scale", "friction_scale", "actuator_gain_scale", "obs_noise_std")

__all__ = ["ScenarioError", "Scenario", "load", "loads", "TARGETS"]


@dataclass(frozen=True)
class RobotConfig:
    target: str = "mujoco"
    mode: str = "lockstep"
    # None: the policy's period (its description), else DEFAULT_DT (scenarios.launch.control_period).
    dt: float | None = None
    port: str | None = None
    initial_pose: tuple[float, ...] = tuple(POSES["home"])
    # Extra command-line options for the robot node, per target.
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A command that replaces "hil node sim|hw", per target: Isaac Sim's
    # backend must run in Isaac's own Python (["/isaac-sim/python.sh", "-m", "sim_node"]).
    command: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # -- remote robot (scenarios across machines) --
    # An endpoints description (JSON) of the bench, relative to the scenario.
    endpoints: Path | None = None
    # The robot already runs elsewhere (at the endpoints' robot address): the
    # runner connects to it instead of starting one, and leaves it running.
    # Default: true when ``endpoints`` is given.
    remote: bool = False
    # -- end remote robot --
    # Cameras (roarm.camera): rendered by a simulator; on the real arm each
    # needs ``device`` and runs as ``hil node camera`` beside the hw node.
    cameras: tuple[CameraSpec, ...] = ()


@dataclass(frozen=True)
class PolicyConfig:
    """The policy of a run: exactly one of ``path``, ``scripted``, ``python``, ``command``.

    ``path`` is a model file or a policy folder (``policy.model`` is its
    older name); ``python`` a ``module:factory`` (or ``/abs/file.py:factory``);
    ``command`` an external process that speaks the bus contract itself,
    with ``{run_dir}``/``{endpoints}`` placeholders (scenarios.launch fills them).
    """

    path: Path | None = None
    scripted: str | None = None
    python: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    @property
    def model(self) -> Path | None:
        """The older name of ``path``."""
        return self.path

    @property
    def source(self) -> str | None:
        """What ``hil node policy --policy`` takes; None for an external ``command``."""
        if self.path is not None:
            return str(self.path)
        if self.scripted is not None:
            return f"scripted:{self.scripted}"
        return self.python

    @property
    def label(self) -> str:
        if self.path is not None:
            return f"onnx:{self.path.name}" if self.path.is_file() else f"folder:{self.path.name}"
        if self.command:
            return f"command:{Path(self.command[0]).name}"
        return f"python:{self.python}" if self.python else f"scripted:{self.scripted}"


@dataclass(frozen=True)
class GoalSpec:
    id: str
    kind: str  # "tcp" (metres, world frame) or "joints" (radians, canonical order)
    target: tuple[float, ...]
    tolerance: float  # metres for tcp, radians for joints
    timeout_s: float  # simulated seconds from the goal's start
    hold_s: float = 0.0  # must stay within tolerance this long to count
    gripper: float | None = None
    # For a joint goal: which joints are judged (all unless a mapping named some).
    joints_judged: tuple[int, ...] = tuple(range(len(NAMES)))
    # Reset the robot to the initial pose before this goal (an episode per goal).
    reset: bool = False
    # Scene objects placed when this goal starts (a simulator): name -> centre (m), None: hidden.
    scene: tuple[tuple[str, tuple[float, float, float] | None], ...] = ()
    # A visual goal: the colour of the target object the policy must find with its camera. The goal
    # message names only the colour; ``target`` is where the scene puts that object (judged as a tcp goal).
    visual: str | None = None
    # A tcp goal: the body brought to ``target`` ("tcp" or a URDF link), judged by forward
    # kinematics of that body from the measured joints; and an orientation (w, x, y, z)
    # passed on to the policy (not judged).
    body: str = "tcp"
    quat: tuple[float, float, float, float] | None = None

    @property
    def observed_kind(self) -> str:
        """What the policy is told: ``visual``, ``tcp`` or ``joints``."""
        return "visual" if self.visual is not None else self.kind


@dataclass(frozen=True)
class KillAction:
    at_s: float  # simulated seconds since the reset
    node: str


@dataclass(frozen=True)
class LimitCheck:
    margin_rad: float = 1e-3


@dataclass(frozen=True)
class TrackingCheck:
    max_rad: float
    lag_steps: int = 2


@dataclass(frozen=True)
class LatencyCheck:
    p99_ms: float


@dataclass(frozen=True)
class DeadlineCheck:
    max_rate: float | None = None
    min_count: int | None = None


@dataclass(frozen=True)
class HoldCheck:
    max_drift_rad: float = 0.02
    settle_s: float = 0.2


@dataclass(frozen=True)
class SuccessRateCheck:
    """A sweep gate: the lower bound of the Wilson interval must reach ``min``.

    Judged over every cell of a sweep (scenarios/sweep_stats.py), not in one
    run: ``per: goal`` gates each goal on each target, ``per: run`` the share
    of runs in which every goal was reached.
    """

    min: float
    confidence: float = 0.95
    per: str = "goal"


SUCCESS_RATE_PER = ("goal", "run")


@dataclass(frozen=True)
class Assertions:
    goals: bool = True
    joint_limits: LimitCheck | None = field(default_factory=LimitCheck)
    tracking_error: TrackingCheck | None = None
    loop_latency: LatencyCheck | None = None
    deadline_misses: DeadlineCheck | None = None
    no_crash: bool = True
    hold_after_kill: HoldCheck | None = None
    success_rate: SuccessRateCheck | None = None


@dataclass(frozen=True)
class Timeouts:
    startup_s: float = 30.0
    # Bound on the whole run in wall seconds; 0 derives one from the goals.
    wall_s: float = 0.0
    heartbeat_s: float = 5.0


@dataclass(frozen=True)
class Scenario:
    name: str
    path: Path
    sha256: str
    description: str = ""
    robot: RobotConfig = field(default_factory=RobotConfig)
    policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(scripted="hold"))
    seed: int = 0
    randomization: dict[str, float] = field(default_factory=dict)
    goals: tuple[GoalSpec, ...] = ()
    actions: tuple[KillAction, ...] = ()
    assertions: Assertions = field(default_factory=Assertions)
    record: bool = False
    duration_s: float = 0.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Scene objects placed with the first reset (a simulator): name -> centre (m), None: hidden.
    scene: tuple[tuple[str, tuple[float, float, float] | None], ...] = ()

    @property
    def sim_time_s(self) -> float:
        """Simulated seconds the run lasts at most: every goal timing out in turn."""
        return max(self.duration_s, sum(g.timeout_s for g in self.goals), max((a.at_s for a in self.actions), default=0))

    def wall_timeout_s(self, mode: str) -> float:
        if self.timeouts.wall_s > 0:
            return self.timeouts.wall_s
        # Realtime runs take their simulated time; lockstep ones usually far
        # less, but a policy that misses deadlines slows them down.
        return 30.0 + 3.0 * self.sim_time_s


TOP_FIELDS = ("name", "description", "robot", "policy", "seed", "randomization", "goals", "actions",
              "assertions", "record", "duration_s", "timeouts", "scene")


def load(path: Path) -> Scenario:
    """Read and validate a scenario file; ScenarioError lists every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read scenario: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([f"{path}: not UTF-8 text: {exc}"]) from None
    return loads(text, path, hashlib.sha256(raw).hexdigest())


def loads(text: str, path: Path, sha256: str | None = None) -> Scenario:
    try:
        source = parse(text, str(path))
    except YamlError as exc:
        raise ScenarioError([str(exc)]) from None
    check = Checker(source)
    scenario = _scenario(check, source, Path(path), sha256 or hashlib.sha256(text.encode()).hexdigest())
    check.raise_if_any()
    return scenario


def goal_from_dict(data: dict[str, Any], origin: str = "command line") -> GoalSpec:
    """One goal written as an item of a scenario's ``goals`` list, with the
    same checks (``hil goal send`` builds its goal this way); ScenarioError
    lists every problem."""
    check = Checker(Source(origin, [data]))
    goal = _goal(check, 0, data)
    check.raise_if_any()
    return goal


def _get(data: dict[str, Any], key: str) -> Any:
    return data.get(key, MISSING)


def _scenario(check: Checker, source: Source, path: Path, sha256: str) -> Scenario:
    top = check.mapping("", source.data, TOP_FIELDS)
    if source.data is None:
        check.error("", "the file is empty")
    name = check.string("name", _get(top, "name"), path.stem) or path.stem
    actions = tuple(_action(check, child("actions", i), item)
                    for i, item in enumerate(check.sequence("actions", _get(top, "actions"))))
    goals = tuple(_goal(check, i, item) for i, item in enumerate(check.sequence("goals", _get(top, "goals"))))
    scene = _scene(check, "scene", _get(top, "scene"))
    goals = _place_visual_goals(check, goals, scene)
    seen: dict[str, int] = {}
    for i, goal in enumerate(goals):
        if goal.id in seen:  # each goal is a test case named after its id
            check.error(child(child("goals", i), "id"), f"{goal.id!r} is already the id of goals[{seen[goal.id]}]")
        seen.setdefault(goal.id, i)
    return Scenario(
        name=name,
        path=path,
        sha256=sha256,
        description=check.string("description", _get(top, "description"), "") or "",
        robot=_robot(check, _get(top, "robot"), path),
        policy=_policy(check, _get(top, "policy"), path),
        seed=check.integer("seed", _get(top, "seed"), 0),
        randomization=_randomization(check, _get(top, "randomization")),
        goals=goals,
        actions=tuple(a for a in actions if a is not None),
        assertions=_assertions(check, _get(top, "assertions"), actions),
        record=check.boolean("record", _get(top, "record"), False),
        duration_s=check.number("duration_s", _get(top, "duration_s"), 0.0, ge=0),
        timeouts=_timeouts(check, _get(top, "timeouts")),
        scene=scene,
    )


def _place_visual_goals(check: Checker, goals: tuple[GoalSpec, ...],
                        scene: tuple[tuple[str, tuple[float, float, float] | None], ...]) -> tuple[GoalSpec, ...]:
    """A visual goal's target is where its object is when the goal starts: the scenario's scene, then
    each goal's scene in order (placements last until changed)."""
    placed: dict[str, tuple[float, float, float] | None] = dict(scene)
    out = []
    for i, goal in enumerate(goals):
        placed.update(goal.scene)
        if goal.visual is not None:
            name = visual_object(goal.visual)
            where = placed.get(name)
            if where is None:
                check.error(child(child("goals", i), "visual"),
                            f"{name} is not in the scene when this goal starts: place it (scene: {{{name}: "
                            "[x, y, z]}} on the goal or the scenario)")
            else:
                goal = replace(goal, target=where)
        out.append(goal)
    return tuple(out)


def visual_object(colour: str) -> str:
    """The scene object a visual goal of ``colour`` points at."""
    return f"target_{colour}"


def _robot(check: Checker, value: Any, scenario_path: Path) -> RobotConfig:
    data = check.mapping("robot", value, ("target", "mode", "dt", "port", "initial_pose", "options", "command",
                                          "remote", "endpoints", "cameras"))
    options: dict[str, tuple[str, ...]] = {}
    for target, args in check.mapping("robot.options", _get(data, "options"), TARGETS).items():
        if target in TARGETS:
            options[target] = check.strings(child("robot.options", target), args)
    command: dict[str, tuple[str, ...]] = {}
    for target, argv in check.mapping("robot.command", _get(data, "command"), TARGETS).items():
        if target in TARGETS:
            command[target] = check.strings(child("robot.command", target), argv)
            if not command[target]:
                check.error(child("robot.command", target), "expected a command: a list of at least one string")
    return RobotConfig(
        target=check.choice("robot.target", _get(data, "target"), TARGETS, "mujoco"),
        mode=check.choice("robot.mode", _get(data, "mode"), MODES, "lockstep"),
        dt=None if "dt" not in data else check.number("robot.dt", data["dt"], DEFAULT_DT, gt=0, le=1.0),
        port=check.string("robot.port", _get(data, "port"), None),
        initial_pose=_pose(check, "robot.initial_pose", _get(data, "initial_pose")),
        options=options,
        command=command,
        **_remote(check, data, scenario_path),
        cameras=_cameras(check, _get(data, "cameras")),
    )


def _cameras(check: Checker, value: Any) -> tuple[CameraSpec, ...]:
    """``robot.cameras``: a list of camera mappings (the fields of roarm.camera.CameraSpec).

    Every problem of every camera is reported: a field that does not read is
    left at its default while the others are still checked.
    """
    specs: list[CameraSpec] = []
    names: dict[str, int] = {}
    for i, item in enumerate(check.sequence("robot.cameras", value)):
        path = child("robot.cameras", i)
        data = check.mapping(path, item, CAMERA_FIELDS, required=("name",))
        values: dict[str, Any] = {}
        reported: set[str] = set()
        for key, raw in data.items():
            if key not in CAMERA_FIELDS:
                continue
            where = child(path, key)
            before = len(check.errors)
            if key in ("pos", "lookat", "quat"):
                read: Any = check.numbers(where, raw, 4 if key == "quat" else 3)
            elif key in ("width", "height", "every"):
                read = check.integer(where, raw, 0, ge=1)
            elif key in ("fov_deg", "rate_hz"):
                read = check.number(where, raw, 0.0, gt=0)
            else:
                read = check.string(where, raw, None)
            if len(check.errors) > before:
                reported.add(key)
            else:
                values[key] = read
        name = values.get("name")
        if isinstance(name, str):
            if name in names:
                check.error(child(path, "name"), f"{name!r} is already the name of robot.cameras[{names[name]}]")
                reported.add("name")
            names.setdefault(name, i)
        try:
            spec = CameraSpec(**{"name": "unnamed", **values})
        except CameraSpecError as exc:
            for key, text in exc.problems:
                if key not in reported:
                    check.error(child(path, key), text)
            continue
        if not reported:
            specs.append(spec)
    return tuple(specs)


def _scene(check: Checker, path: str, value: Any) -> tuple[tuple[str, tuple[float, float, float] | None], ...]:
    """``scene``: object name -> [x, y, z] (its centre, m, world frame) or hidden."""
    out = []
    for name, item in check.mapping(path, value, SCENE_OBJECTS).items():
        if name not in SCENE_OBJECTS:
            continue
        if item == "hidden" or item is None:
            out.append((name, None))
            continue
        vector = check.numbers(child(path, name), item, 3)
        if vector is not None:
            out.append((name, (vector[0], vector[1], vector[2])))
    return tuple(out)


# -- remote robot (scenarios across machines) --
def _remote(check: Checker, data: dict[str, Any], scenario_path: Path) -> dict[str, Any]:
    """``robot.endpoints`` (a file, looked up like ``policy.model``) and ``robot.remote``."""
    endpoints = None
    text = check.string("robot.endpoints", _get(data, "endpoints"), None)
    if text:
        endpoints = resolve_file(Path(text), scenario_path)
        if endpoints is None:
            check.error("robot.endpoints", f"no such file {text!r} (relative paths are looked up next to the "
                        "scenario file, then in the current folder)")
    remote = check.boolean("robot.remote", _get(data, "remote"), bool(text))
    return {"endpoints": endpoints, "remote": remote}
# -- end remote robot --


def _pose(check: Checker, path: str, value: Any) -> tuple[float, ...]:
    if value is MISSING:
        return tuple(POSES["home"])
    if isinstance(value, str):
        if value not in POSES:
            check.error(path, f"unknown pose {value!r}; known: {', '.join(POSES)}")
            return tuple(POSES["home"])
        return tuple(POSES[value])
    joints = _joint_values(check, path, value)
    return tuple(joints[1]) if joints else tuple(POSES["home"])


def _joint_values(check: Checker, path: str, value: Any) -> tuple[tuple[int, ...], list[float]] | None:
    """Six joint values (a list) or some of them (a mapping name -> value), within limits.

    Returns the judged joint indices and a full vector (unnamed joints 0).
    """
    if isinstance(value, dict):
        index: list[int] = []
        full = [0.0] * len(NAMES)
        for name, item in check.mapping(path, value, NAMES).items():
            if name not in NAMES:
                continue
            number = check.number(child(path, name), item, 0.0)
            index.append(NAMES.index(name))
            full[NAMES.index(name)] = number
        if not index and isinstance(value, dict) and not value:
            check.error(path, "name at least one joint")
    else:
        vector = check.numbers(path, value, len(NAMES))
        if vector is None:
            return None
        index, full = list(range(len(NAMES))), list(vector)
    for i in index:
        if not LOWER[i] <= full[i] <= UPPER[i]:
            where = child(path, NAMES[i]) if isinstance(value, dict) else child(path, i)
            check.error(where, f"{full[i]:g} rad is outside the {NAMES[i]} limits {LOWER[i]:.4g}..{UPPER[i]:.4g}")
    return tuple(sorted(index)), full


POLICY_KINDS = ("path", "model", "scripted", "python", "command")
PLACEHOLDERS = ("run_dir", "endpoints", "scenario_dir")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _policy(check: Checker, value: Any, scenario_path: Path) -> PolicyConfig:
    data = check.mapping("policy", value, (*POLICY_KINDS, "args"))
    given = [k for k in POLICY_KINDS if k in data]
    if "path" in given and "model" in given:
        check.error("policy.model", "give path or model (its older name), not both")
    elif len(given) > 1:
        check.error("policy", f"give one of path, scripted, python or command, not {' and '.join(given)}")
    if not given:
        check.error("policy", "give the policy: path (a model file or a policy folder), scripted (hold, waypoints, "
                    "ik, see_reach), python (module:factory) or command (a process that speaks the bus contract)")
    args = check.strings("policy.args", _get(data, "args"))
    path = scripted = python = None
    command: tuple[str, ...] = ()
    for key in ("path", "model"):
        text = check.string(f"policy.{key}", _get(data, key), None)
        if text:
            path = resolve_path(Path(text), scenario_path)
            if path is None:
                check.error(f"policy.{key}", f"no such file or folder {text!r} (relative paths are looked up next to "
                            "the scenario file, then in the current folder)")
    if "scripted" in data:
        scripted = check.choice("policy.scripted", data["scripted"], SCRIPTED_NAMES, "hold")
    if "python" in data:
        text = check.string("policy.python", data["python"], None)
        if text:
            python, problem = _python_source(text, scenario_path)
            if problem:
                check.error("policy.python", problem)
    if "command" in data:
        command = check.strings("policy.command", data["command"])
        if not command:
            check.error("policy.command", "expected a command: a list of at least one string")
        for i, item in enumerate(command):
            for name in _PLACEHOLDER.findall(item):
                if name not in PLACEHOLDERS:
                    check.error(child("policy.command", i), f"unknown placeholder {{{name}}}; known: "
                                + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
        if command and ("/" in command[0] and not Path(command[0]).is_absolute()):
            found = resolve_file(Path(command[0]), scenario_path)
            if found is None:
                check.error(child("policy.command", 0), f"no such program {command[0]!r} (relative paths are looked "
                            "up next to the scenario file, then in the current folder)")
            else:
                command = (str(found), *command[1:])
        if args:
            check.error("policy.args", "args are options of hil node policy; an external command takes its own")
    return PolicyConfig(path=path, scripted=scripted, python=python, command=command, args=args)


def _python_source(text: str, scenario_path: Path) -> tuple[str | None, str]:
    """(source, problem): ``module:factory`` as given, ``file.py:factory`` with the file found
    (next to the scenario first, then in the current folder)."""
    if not is_python_source(text):
        return None, f"expected module:factory or path/to/file.py:factory, got {text!r}"
    left, right = text.rsplit(":", 1)
    if not left.endswith(".py"):
        return text, ""
    found = resolve_file(Path(left), scenario_path)
    if found is None:
        return None, (f"no such Python file {left!r} (relative paths are looked up next to the scenario file, "
                      "then in the current folder)")
    return f"{found}:{right}", ""


def policy_from_source(text: str, origin: str = "--policy") -> PolicyConfig:
    """The policy ``hil run --policy`` names: ``scripted:NAME``, ``module:factory`` or a path (file or folder).

    Relative paths are taken from the current folder; ScenarioError says what is wrong.
    """
    here = Path.cwd() / "(command line)"
    if text.startswith("scripted:"):
        name = text.split(":", 1)[1]
        if name not in SCRIPTED_NAMES:
            raise ScenarioError([f"{origin}: unknown scripted policy {name!r}; known: {', '.join(SCRIPTED_NAMES)}"])
        return PolicyConfig(scripted=name)
    if is_python_source(text) and not Path(text).exists():
        source, problem = _python_source(text, here)
        if source is None:
            raise ScenarioError([f"{origin}: {problem}"])
        return PolicyConfig(python=source)
    path = resolve_path(Path(text), here)
    if path is None:
        raise ScenarioError([f"{origin}: no such file or folder {text!r}; a policy is a model file, a policy folder, "
                             f"scripted:NAME ({', '.join(SCRIPTED_NAMES)}) or module:factory"])
    return PolicyConfig(path=path)


def resolve_path(path: Path, scenario_path: Path) -> Path | None:
    """A file or folder named in a scenario: absolute, next to the scenario, or in the current folder."""
    candidates = [path] if path.is_absolute() else [scenario_path.parent / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    return None


def resolve_file(path: Path, scenario_path: Path) -> Path | None:
    """A file named in a scenario: absolute, next to the scenario, or in the current folder."""
    candidates = [path] if path.is_absolute() else [scenario_path.parent / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return None


def _randomization(check: Checker, value: Any) -> dict[str, float]:
    data = check.mapping("randomization", value, (*RANDOMIZATION_FIELDS, "max_latency_steps"))
    out = {}
    for key in RANDOMIZATION_FIELDS:
        if key in data:
            out[key] = check.number(child("randomization", key), data[key], 0.0, ge=0, le=1.0)
    if "max_latency_steps" in data:
        out["max_latency_steps"] = float(check.integer("randomization.max_latency_steps",
                                                       data["max_latency_steps"], 0))
    return out


def _goal(check: Checker, index: int, value: Any) -> GoalSpec:
    path = child("goals", index)
    data = check.mapping(path, value, ("id", "tcp", "joints", "visual", "gripper", "tolerance_mm", "tolerance_rad",
                                       "timeout_s", "hold_s", "reset", "scene", "body", "quat"))
    scene = _scene(check, child(path, "scene"), _get(data, "scene"))
    if "tcp" not in data:
        for key in ("body", "quat"):
            if key in data:
                check.error(child(path, key), f"only a tcp goal takes {key}")
    goal_id = check.string(child(path, "id"), _get(data, "id"), f"goal{index}") or f"goal{index}"
    timeout = check.number(child(path, "timeout_s"), _get(data, "timeout_s"), 5.0, gt=0)
    hold = check.number(child(path, "hold_s"), _get(data, "hold_s"), 0.0, ge=0)
    reset = check.boolean(child(path, "reset"), _get(data, "reset"), False)
    if sum(key in data for key in ("tcp", "joints", "visual")) > 1:
        check.error(path, "give one target: tcp, joints or visual")
    if "visual" in data:
        if "tolerance_rad" in data:
            check.error(child(path, "tolerance_rad"), "a visual goal takes tolerance_mm")
        colour = check.choice(child(path, "visual"), data["visual"], VISUAL_COLOURS, VISUAL_COLOURS[0])
        tolerance = check.number(child(path, "tolerance_mm"), _get(data, "tolerance_mm"), 15.0, gt=0) / 1000
        # The target is filled in from the scene once every goal is read (_place_visual_goals).
        return GoalSpec(goal_id, "tcp", (0.0, 0.0, 0.0), tolerance, timeout, hold, reset=reset, scene=scene,
                        visual=colour)
    if "tcp" in data:
        if "tolerance_rad" in data:
            check.error(child(path, "tolerance_rad"), "a tcp goal takes tolerance_mm")
        target = check.numbers(child(path, "tcp"), data["tcp"], 3) or (0.0, 0.0, 0.0)
        tolerance = check.number(child(path, "tolerance_mm"), _get(data, "tolerance_mm"), 10.0, gt=0) / 1000
        gripper = None
        if "gripper" in data:
            gripper = check.number(child(path, "gripper"), data["gripper"], 0.0, ge=float(LOWER[5]),
                                   le=float(UPPER[5]))
        body = "tcp"
        if "body" in data:
            body = check.choice(child(path, "body"), "tcp" if data["body"] == "hand_tcp" else data["body"],
                                GOAL_BODIES, "tcp")
        quat = _quat(check, child(path, "quat"), data["quat"]) if "quat" in data else None
        return GoalSpec(goal_id, "tcp", target, tolerance, timeout, hold, gripper, reset=reset, scene=scene,
                        body=body, quat=quat)
    if "joints" in data:
        if "tolerance_mm" in data:
            check.error(child(path, "tolerance_mm"), "a joints goal takes tolerance_rad")
        if "gripper" in data:
            check.error(child(path, "gripper"), "a joints goal sets the gripper as its sixth joint")
        joints = _joint_values(check, child(path, "joints"), data["joints"])
        tolerance = check.number(child(path, "tolerance_rad"), _get(data, "tolerance_rad"), 0.05, gt=0)
        if joints is None:
            return GoalSpec(goal_id, "joints", tuple([0.0] * len(NAMES)), tolerance, timeout, hold)
        return GoalSpec(goal_id, "joints", tuple(joints[1]), tolerance, timeout, hold, joints_judged=joints[0],
                        reset=reset, scene=scene)
    if isinstance(value, dict):
        check.error(path, "a goal needs a target: tcp: [x, y, z] (m) or joints: [6 values] (rad)")
    return GoalSpec(goal_id, "tcp", (0.0, 0.0, 0.0), 0.01, timeout, hold)


def _quat(check: Checker, path: str, value: Any) -> tuple[float, float, float, float] | None:
    """A unit quaternion written w, x, y, z."""
    q = check.numbers(path, value, 4)
    if q is None:
        return None
    norm = math.sqrt(sum(v * v for v in q))
    if abs(norm - 1.0) > 1e-3:
        check.error(path, f"[{', '.join(f'{v:g}' for v in q)}] is not a unit quaternion (w, x, y, z): its norm is "
                    f"{norm:.4g}")
        return None
    return (q[0], q[1], q[2], q[3])


def _action(check: Checker, path: str, value: Any) -> KillAction | None:
    data = check.mapping(path, value, ("at_s", "kill"), required=("at_s", "kill"))
    if "at_s" not in data or "kill" not in data:
        return None
    return KillAction(check.number(child(path, "at_s"), data["at_s"], 0.0, ge=0),
                      check.choice(child(path, "kill"), data["kill"], KILLABLE, "policy"))


def _assertions(check: Checker, value: Any, actions: tuple[KillAction | None, ...]) -> Assertions:
    fields = ("goals", "joint_limits", "tracking_error", "loop_latency", "deadline_misses", "no_crash",
              "hold_after_kill", "success_rate")
    data = check.mapping("assertions", value, fields)
    base = "assertions"

    def section(key: str, known: tuple[str, ...]) -> dict[str, Any] | None:
        """None when absent or false; {} when true; the mapping otherwise."""
        raw = _get(data, key)
        if raw is MISSING or raw is False:
            return None
        if raw is True:
            return {}
        return check.mapping(child(base, key), raw, known)

    limits = section("joint_limits", ("margin_rad",))
    if "joint_limits" not in data:
        limits = {}
    tracking = section("tracking_error", ("max_rad", "lag_steps"))
    latency = section("loop_latency", ("p99_ms",))
    deadline = section("deadline_misses", ("max_rate", "min_count"))
    hold = section("hold_after_kill", ("max_drift_rad", "settle_s"))
    rate = section("success_rate", ("min", "confidence", "per"))
    out = Assertions(
        goals=check.boolean(child(base, "goals"), _get(data, "goals"), True),
        no_crash=check.boolean(child(base, "no_crash"), _get(data, "no_crash"), True),
        joint_limits=None if limits is None else LimitCheck(
            check.number(child(base, "joint_limits.margin_rad"), _get(limits, "margin_rad"), 1e-3, ge=0)),
    )
    if tracking is not None:
        if "max_rad" not in tracking:
            check.error(child(base, "tracking_error"), "missing required field 'max_rad'")
        out = replace(out, tracking_error=TrackingCheck(
            check.number(child(base, "tracking_error.max_rad"), _get(tracking, "max_rad"), 0.1, gt=0),
            check.integer(child(base, "tracking_error.lag_steps"), _get(tracking, "lag_steps"), 2)))
    if latency is not None:
        if "p99_ms" not in latency:
            check.error(child(base, "loop_latency"), "missing required field 'p99_ms'")
        out = replace(out, loop_latency=LatencyCheck(
            check.number(child(base, "loop_latency.p99_ms"), _get(latency, "p99_ms"), 20.0, gt=0)))
    if deadline is not None:
        max_rate = None
        min_count = None
        if "max_rate" in deadline:
            max_rate = check.number(child(base, "deadline_misses.max_rate"), deadline["max_rate"], 0.0, ge=0, le=1)
        if "min_count" in deadline:
            min_count = check.integer(child(base, "deadline_misses.min_count"), deadline["min_count"], 1)
        if max_rate is None and min_count is None:
            max_rate = 0.0
        out = replace(out, deadline_misses=DeadlineCheck(max_rate, min_count))
    if hold is not None:
        if not any(a is not None for a in actions):
            check.error(child(base, "hold_after_kill"), "needs a kill action (actions: - {at_s: ..., kill: policy})")
        out = replace(out, hold_after_kill=HoldCheck(
            check.number(child(base, "hold_after_kill.max_drift_rad"), _get(hold, "max_drift_rad"), 0.02, gt=0),
            check.number(child(base, "hold_after_kill.settle_s"), _get(hold, "settle_s"), 0.2, ge=0)))
    if rate is not None:
        out = replace(out, success_rate=_success_rate(check, child(base, "success_rate"), rate))
    return out


def _success_rate(check: Checker, path: str, data: dict[str, Any]) -> SuccessRateCheck:
    """``{min: 0.95, confidence: 0.95, per: goal}``: min is required, the rest has defaults."""
    if "min" not in data:
        check.error(path, "missing required field 'min' (the success rate the interval's lower bound must reach)")
    confidence = check.number(child(path, "confidence"), _get(data, "confidence"), 0.95, gt=0, lt=1)
    return SuccessRateCheck(check.number(child(path, "min"), _get(data, "min"), 0.0, ge=0, le=1), confidence,
                            check.choice(child(path, "per"), _get(data, "per"), SUCCESS_RATE_PER, "goal"))


def _timeouts(check: Checker, value: Any) -> Timeouts:
    data = check.mapping("timeouts", value, ("startup_s", "wall_s", "heartbeat_s"))
    return Timeouts(
        startup_s=check.number("timeouts.startup_s", _get(data, "startup_s"), 30.0, gt=0),
        wall_s=check.number("timeouts.wall_s", _get(data, "wall_s"), 0.0, ge=0),
        heartbeat_s=check.number("timeouts.heartbeat_s", _get(data, "heartbeat_s"), 5.0, gt=0),
    )
