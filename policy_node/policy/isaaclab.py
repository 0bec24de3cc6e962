"""An Isaac Lab rsl_rl run folder -> a policy folder (``policy.yaml`` + ``policy.onnx``).

What is read from the run folder ``logs/rsl_rl/EXPERIMENT/RUN``:

- ``params/env.yaml``: Isaac Lab's ``dump_yaml`` (isaaclab/utils/io/yaml.py)
  writes ``class_to_dict(cfg)`` (isaaclab/utils/dict.py: callables become
  ``"module:name"`` strings, tuples and slices are kept) with PyYAML's
  default Dumper, so the file holds ``!!python/tuple`` and
  ``!!python/object/apply:builtins.slice`` tags: ``yaml.safe_load`` refuses
  them and ``yaml.full_load`` refuses the slice. ``IsaacLabLoader`` (a
  SafeLoader) reads every ``python/`` tag as plain data and constructs no
  object, imports nothing, calls nothing.
- ``params/agent.yaml``: ``clip_actions`` (the rsl_rl wrapper clips the
  policy's output to [-c, c] before the environment sees it).
- ``exported/policy.onnx``: what Isaac Lab's ``play.py`` exports (input
  ``obs`` [1, N], output ``actions``; an empirical observation normalizer, if
  trained with one, is inside the graph, so nothing is added here).

Mapped: the ``policy`` observation group's terms in order (``joint_pos_rel``,
``joint_vel_rel``, ``joint_pos``, ``joint_vel``, ``last_action``,
``generated_commands`` of a ``UniformPoseCommand`` with its ``body_name``),
each term's ``scale`` and ``clip``; every ``JointPositionAction`` term
(``joint_names`` regexes resolved against the arm's joints in articulation
order, or in the listed order with ``preserve_order``; ``scale``, ``offset``,
``use_default_offset``); the default pose from
``scene.robot.init_state.joint_pos`` (regexes, as Isaac Lab resolves them:
full match, unlisted joints 0); ``period = sim.dt * decimation``. Anything
else is an error naming the term. Observation noise is ignored (training-time
corruption; play.py turns it off too).

The pose command's frame
------------------------
``UniformPoseCommand`` (isaaclab/envs/mdp/commands/pose_command.py) keeps
its command "(x, y, z, qw, qx, qy, qz) in root frame" and maps it to the
world with ``robot.data.root_pos_w`` / ``root_quat_w``: the pose of the
articulation's root body. Which body that is for the RoArm-M3 URDF, whose
first link is a massless ``world`` fixed to ``base_link`` 0.0701 m below it:

- Isaac Sim's URDF importer takes as base the one link that is no joint's
  child (isaac-sim/urdf-importer-extension,
  source/extensions/isaacsim.asset.importer.urdf/plugins/import/KinematicChain.cpp,
  ``computeKinematicChain``): here ``world``. With ``fix_base`` it adds
  ``root_joint``, fixing that link to the stage, and puts the articulation
  root on it (UrdfImporter.cpp, ``addLinksAndJoints``).
- Isaac Lab's ``UrdfConverterCfg.merge_fixed_joints`` defaults to True
  (isaaclab/sim/converters/urdf_converter_cfg.py), and merging folds each
  fixed child into its parent (ImportHelpers.cpp, ``mergeFixedChildLinks``:
  ``urdfParentLink.mergedChildren[child]``): ``base_link``'s mass and shapes
  move into ``world``, which stays the root body. Unmerged, ``world`` is
  still the root (above).
- So the command is in the ``world`` link's frame: at the URDF origin, on the
  table, which is this harness's world frame. Default: ``root_body="world"``.

The newer importer (Isaac Sim 6, importer 3.0 via newton-physics'
urdf-usd-converter) treats an empty link joined by a fixed joint as a
"ghost link" and may skip it (newton-physics/urdf-usd-converter pull 103,
isaac-sim/IsaacSim issue 599), which would make ``base_link`` the root:
``root_body="base_link"`` is for a policy trained that way (goal positions
then go to the policy 0.0701 m lower). Check with ``robot.data.root_pos_w``
in Isaac Lab if unsure: z 0 means ``world``, z 0.0701 means ``base_link``.

The quaternion order of Isaac Lab 2.x is (w, x, y, z) everywhere; a later
version that changes it needs ``quat_order="xyzw"``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bus.errors import HilError
from bus.yamlsource import child, parse
from policy_node.policy import description as desc_mod
from policy_node.policy.description import BODIES, BODY_ALIASES, PolicyDescription
from roarm.joints import URDF_NAMES

ROOT_BODIES = ("world", "base_link")
DEFAULT_ROOT_BODY = "world"
# PhysX orders a serial chain's joints from the root outwards: the URDF order.
ARTICULATION_JOINTS = URDF_NAMES
EXPORT_HINT = (
    "run Isaac Lab's play.py on this run to export it (for example: ./isaaclab.sh -p "
    "scripts/reinforcement_learning/rsl_rl/play.py --task TASK --load_run RUN_NAME), which writes "
    "exported/policy.onnx into the run folder")
_JOINT_OBS = {"joint_pos_rel": "joint_pos_rel", "joint_vel_rel": "joint_vel_rel", "joint_pos": "joint_pos",
              "joint_vel": "joint_vel"}
_KNOWN_OBS = (*_JOINT_OBS, "last_action", "generated_commands")
_GROUP_KEYS = ("concatenate_terms", "concatenate_dim", "enable_corruption", "history_length", "flatten_history_dim")


class IsaacLabImportError(HilError, ValueError):
    """A run folder that cannot be turned into a policy folder; one message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class IsaacLabLoader(yaml.SafeLoader):
    """SafeLoader that reads the Python tags of Isaac Lab's dumps as plain data (never an object)."""


def _python_tag(loader: IsaacLabLoader, suffix: str, node: yaml.Node) -> Any:
    """``!!python/tuple`` -> list, ``...apply:builtins.slice`` -> "slice(a,b,c)" (Isaac Lab's own spelling),
    ``!!python/name:x`` -> "x", any other object -> its arguments or state as a list or dict."""
    if isinstance(node, yaml.SequenceNode):
        items = loader.construct_sequence(node, deep=True)
        if suffix == "object/apply:builtins.slice":
            start, stop, step = (list(items) + [None, None, None])[:3]
            return f"slice({start},{stop},{step})"
        return list(items)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    value = loader.construct_scalar(node)
    scalars = {"none": lambda v: None, "bool": lambda v: v.lower() in ("true", "yes", "on", "1"),
               "int": int, "float": float}
    if suffix in scalars:
        try:
            return scalars[suffix](value)
        except ValueError:
            return value
    if suffix.startswith(("name:", "module:")):
        return suffix.split(":", 1)[1]
    return value


IsaacLabLoader.add_multi_constructor("tag:yaml.org,2002:python/", _python_tag)


@dataclass
class _Doc:
    """One YAML file of the run: its data and the line of every field, for errors."""

    path: Path
    data: Any
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, path: str) -> str:
        while path and path not in self.lines:
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return f"{self.path}:{self.lines.get(path, 1)}"


def load_yaml(path: Path) -> Any:
    """An Isaac Lab params file as plain data (lists, dicts, strings, numbers)."""
    return _read(Path(path), []).data


def _read(path: Path, errors: list[str]) -> _Doc:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        errors.append(f"{path}: cannot read it: {exc.strerror or exc}")
        return _Doc(path, None)
    try:
        data = yaml.load(text, Loader=IsaacLabLoader)  # noqa: S506 - a SafeLoader subclass: constructs no objects
    except yaml.YAMLError as exc:
        errors.append(f"{path}: not YAML that Isaac Lab's dump_yaml writes: {exc}")
        return _Doc(path, None)
    try:
        lines = parse(text, str(path)).lines
    except ValueError:
        lines = {}
    return _Doc(path, data, lines)


class _Importer:
    """Collects every problem of one run folder before anything is written."""

    def __init__(self, root_body: str, quat_order: str, joints: tuple[str, ...]) -> None:
        self.root_body = root_body
        self.quat_order = quat_order
        self.joints = joints
        self.errors: list[str] = []

    def error(self, doc: _Doc, path: str, text: str) -> None:
        self.errors.append(f"{doc.where(path)}: {path}: {text}")

    def get(self, doc: _Doc, path: str, data: Any, key: str, kind: type | tuple[type, ...] = object) -> Any:
        sub = child(path, key)
        if not isinstance(data, dict) or key not in data:
            self.error(doc, path or "(top)", f"missing {key!r}: is this an Isaac Lab env.yaml / agent.yaml?")
            return None
        value = data[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float, (int, float)):
            self.error(doc, sub, f"unexpected value {value!r}")
            return None
        return value

    # -- names ---------------------------------------------------------------------------
    def resolve(self, doc: _Doc, path: str, keys: Any, preserve_order: bool = False) -> list[str]:
        """Joint regexes -> joint names, as Isaac Lab's find_joints does (each key must match)."""
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            self.error(doc, path, f"expected joint names or regular expressions, got {keys!r}")
            return []
        matched: list[str] = []
        for i, key in enumerate(keys):
            hits = [name for name in self.joints if re.fullmatch(key, name)]
            if not hits:
                self.error(doc, child(path, i), f"{key!r} matches none of the arm's joints ({', '.join(self.joints)})")
            for name in hits:
                if name not in matched:
                    matched.append(name)
        return matched if preserve_order else [name for name in self.joints if name in matched]

    def per_joint(self, doc: _Doc, path: str, value: Any, names: list[str], default: float) -> list[float]:
        """A float, or a dict regex -> float (Isaac Lab: unmatched joints keep ``default``)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [float(value)] * len(names)
        out = [default] * len(names)
        if not isinstance(value, dict):
            self.error(doc, path, f"expected a number or a mapping joint regex -> number, got {value!r}")
            return out
        for key, number in value.items():
            hits = [i for i, name in enumerate(names) if re.fullmatch(str(key), name)]
            if not hits or not isinstance(number, (int, float)):
                self.error(doc, child(path, key), f"{key!r}: {number!r} matches none of {', '.join(names)}"
                           if not hits else f"expected a number, got {number!r}")
            for i in hits:
                out[i] = float(number)
        return out

    # -- sections ------------------------------------------------------------------------
    def default_pose(self, env: _Doc, robot: dict) -> dict[str, float]:
        path = "scene.robot.init_state.joint_pos"
        init = robot.get("init_state") if isinstance(robot, dict) else None
        pose = {name: 0.0 for name in self.joints}
        spec = init.get("joint_pos") if isinstance(init, dict) else None
        if not isinstance(spec, dict):
            self.error(env, path, f"expected a mapping joint regex -> angle, got {spec!r}")
            return pose
        claimed: dict[str, str] = {}
        for key, value in spec.items():
            hits = [name for name in self.joints if re.fullmatch(str(key), name)]
            if not hits:
                self.error(env, child(path, key), f"{key!r} matches none of the arm's joints ({', '.join(self.joints)})")
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self.error(env, child(path, key), f"expected an angle in rad, got {value!r}")
                continue
            for name in hits:
                if name in claimed:
                    self.error(env, child(path, key), f"{name} is also matched by {claimed[name]!r}")
                claimed[name] = str(key)
                pose[name] = float(value)
        return pose

    def actions(self, env: _Doc, agent: _Doc) -> tuple[list[str], dict[str, Any]]:
        terms = self.get(env, "", env.data, "actions", dict) or {}
        names: list[str] = []
        scale: list[float] = []
        offset: list[float] = []
        modes = set()
        for term_name, term in terms.items():
            path = child("actions", term_name)
            if term is None:
                continue  # a disabled term (e.g. gripper_action: null)
            class_type = str(term.get("class_type", "")) if isinstance(term, dict) else ""
            if not class_type.endswith(":JointPositionAction"):
                self.error(env, path, f"action term {term_name!r} is {class_type or repr(term)}: only JointPositionAction "
                           "(joint position targets) maps to this arm's position servos")
                continue
            if term.get("asset_name", "robot") != "robot":
                self.error(env, child(path, "asset_name"), f"drives {term.get('asset_name')!r}, not the robot")
            if term.get("clip") is not None:
                self.error(env, child(path, "clip"), "a clip on the processed joint targets is not supported: "
                           "remove it, or clip the raw output with the agent's clip_actions")
            joints = self.resolve(env, child(path, "joint_names"), term.get("joint_names"),
                                  bool(term.get("preserve_order", False)))
            names += joints
            scale += self.per_joint(env, child(path, "scale"), term.get("scale", 1.0), joints, 1.0)
            if term.get("use_default_offset", True):
                modes.add("offset")
                offset += [0.0] * len(joints)
            else:
                modes.add("absolute")
                offset += self.per_joint(env, child(path, "offset"), term.get("offset", 0.0), joints, 0.0)
        if not names and not self.errors:
            self.error(env, "actions", "no JointPositionAction term: nothing for the arm to do")
        if len(modes) > 1:
            self.error(env, "actions", "the action terms mix use_default_offset true and false; use one")
        if len(set(names)) != len(names):
            self.error(env, "actions", "two action terms drive the same joint")
        clip_actions = agent.data.get("clip_actions") if isinstance(agent.data, dict) else None
        clip = None
        if clip_actions is not None:
            if not isinstance(clip_actions, (int, float)) or isinstance(clip_actions, bool) or clip_actions <= 0:
                self.error(agent, "clip_actions", f"expected a number > 0 or null, got {clip_actions!r}")
            else:
                clip = float(clip_actions)
        action: dict[str, Any] = {"mode": modes.pop() if len(modes) == 1 else "offset",
                                  "scale": _compact(scale), "offset": _compact(offset)}
        if clip is not None:
            action["clip"] = clip
        action["hold"] = "default"
        return names, action

    def observation(self, env: _Doc, group_name: str) -> list[dict[str, Any]]:
        groups = self.get(env, "", env.data, "observations", dict) or {}
        path = child("observations", group_name)
        group = groups.get(group_name)
        if not isinstance(group, dict):
            self.error(env, "observations", f"no observation group {group_name!r} (groups: {', '.join(groups) or 'none'})")
            return []
        if group.get("concatenate_terms", True) is not True:
            self.error(env, child(path, "concatenate_terms"), "the policy must see one concatenated vector")
        if group.get("history_length") not in (None, 0):
            self.error(env, child(path, "history_length"), "observation history is not supported")
        out = []
        for name, term in group.items():
            if name in _GROUP_KEYS or term is None:
                continue
            term_path = child(path, name)
            func = term.get("func") if isinstance(term, dict) else None
            if not isinstance(func, str) or ":" not in func:
                self.error(env, term_path, f"observation term {name!r} has no function (func: {func!r})")
                continue
            module, func_name = func.split(":", 1)
            mapped = self.term(env, term_path, name, module, func_name, term)
            if mapped is not None:
                out.append(mapped)
        return out

    def term(self, env: _Doc, path: str, name: str, module: str, func: str, term: dict) -> dict[str, Any] | None:
        if not module.startswith("isaaclab") or func not in _KNOWN_OBS:
            self.error(env, child(path, "func"), f"observation term {name!r} ({module}:{func}) has no equivalent "
                       f"here; terms that map: {', '.join(_KNOWN_OBS)} from Isaac Lab's mdp")
            return None
        if term.get("modifiers"):
            self.error(env, child(path, "modifiers"), f"observation term {name!r} has modifiers, which are not supported")
        if term.get("history_length") not in (None, 0):
            self.error(env, child(path, "history_length"), f"observation term {name!r} keeps a history, which is not supported")
        params = term.get("params") or {}
        out: dict[str, Any] = {"term": func, "name": name}
        if func in _JOINT_OBS:
            out["term"] = _JOINT_OBS[func]
            asset = params.get("asset_cfg")
            keys: Any = ".*"
            preserve = False
            if isinstance(asset, dict):
                if asset.get("name", "robot") != "robot":
                    self.error(env, child(child(path, "params"), "asset_cfg"), f"observes {asset.get('name')!r}, not the robot")
                keys = asset.get("joint_names") if asset.get("joint_names") is not None else ".*"
                preserve = bool(asset.get("preserve_order", False))
            out["joints"] = self.resolve(env, child(child(path, "params"), "asset_cfg.joint_names"), keys, preserve)
        elif func == "last_action":
            if params.get("action_name") is not None and len(self._action_terms(env)) > 1:
                self.error(env, child(path, "params"), "last_action of one action term out of several is not supported")
            out["term"] = "last_action"
        else:
            self.pose_command(env, path, name, params, out)
        for key in ("scale", "clip"):
            if term.get(key) is not None:
                out[key] = term[key]
        return out

    def _action_terms(self, env: _Doc) -> list[str]:
        terms = env.data.get("actions") if isinstance(env.data, dict) else None
        return [k for k, v in (terms or {}).items() if v is not None]

    def pose_command(self, env: _Doc, path: str, name: str, params: dict, out: dict[str, Any]) -> None:
        command_name = params.get("command_name")
        commands = env.data.get("commands") if isinstance(env.data, dict) else None
        command = (commands or {}).get(command_name) if isinstance(commands, dict) else None
        if not isinstance(command, dict):
            self.error(env, child(path, "params"), f"observation term {name!r} reads command {command_name!r}, "
                       f"which is not in commands ({', '.join(commands or {}) or 'none'})")
            return
        cpath = child("commands", str(command_name))
        class_type = str(command.get("class_type", ""))
        if not class_type.endswith("UniformPoseCommand"):
            self.error(env, child(cpath, "class_type"), f"command {command_name!r} is {class_type!r}: only a pose "
                       "command (UniformPoseCommand) maps to this harness's Cartesian goals")
            return
        body = command.get("body_name")
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        body = BODY_ALIASES.get(body, body) if isinstance(body, str) else body
        if body not in BODIES:
            self.error(env, child(cpath, "body_name"), f"body {body!r} is not a link of the RoArm-M3 "
                       f"this harness knows ({', '.join(BODIES)})")
            return
        out.update({"term": "goal_pose", "body": body, "frame": "world" if self.root_body == "world" else "base",
                    "quat": self.quat_order})


def _compact(values: list[float]) -> float | list[float]:
    return values[0] if values and all(v == values[0] for v in values) else values


def _onnx_io(path: Path) -> tuple[list[tuple[str, list[Any]]], list[tuple[str, list[Any]]]]:
    """(name, shape) of the model's inputs and outputs; a symbolic dimension is its name."""
    import onnx  # here, not at the top: reading a run's params alone never pays onnx's import time

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}

    def shape(value: Any) -> list[Any]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]

    inputs = [(v.name, shape(v)) for v in model.graph.input if v.name not in initializers]
    return inputs, [(v.name, shape(v)) for v in model.graph.output]


def import_isaaclab(run_dir: Path, out_dir: Path, root_body: str = DEFAULT_ROOT_BODY, *, quat_order: str = "wxyz",
                    group: str = "policy") -> PolicyDescription:
    """Write ``out_dir/policy.yaml`` and ``out_dir/policy.onnx`` for an rsl_rl run; return the description.

    Nothing is written unless the whole run maps: every problem is listed in
    one IsaacLabImportError, each naming the file, line and field.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if root_body not in ROOT_BODIES:
        raise IsaacLabImportError([f"root body {root_body!r}: expected one of {', '.join(ROOT_BODIES)}"])
    if quat_order not in desc_mod.QUAT_ORDERS:
        raise IsaacLabImportError([f"quaternion order {quat_order!r}: expected one of {', '.join(desc_mod.QUAT_ORDERS)}"])
    if not run_dir.is_dir():
        raise IsaacLabImportError([f"{run_dir}: no such run folder (an Isaac Lab logs/rsl_rl/EXPERIMENT/RUN folder)"])
    model = run_dir / "exported" / "policy.onnx"
    missing = []
    for needed, why in ((run_dir / "params" / "env.yaml", "Isaac Lab's train.py writes it at the start of a run"),
                        (run_dir / "params" / "agent.yaml", "it holds clip_actions; train.py writes it beside env.yaml")):
        if not needed.is_file():
            missing.append(f"{needed}: missing: {why}")
    if not model.is_file():
        missing.append(f"{model}: missing: {EXPORT_HINT}")
    if missing:
        raise IsaacLabImportError(missing)

    imp = _Importer(root_body, quat_order, ARTICULATION_JOINTS)
    env = _read(run_dir / "params" / "env.yaml", imp.errors)
    agent = _read(run_dir / "params" / "agent.yaml", imp.errors)
    if imp.errors:
        raise IsaacLabImportError(imp.errors)
    sim = imp.get(env, "", env.data, "sim", dict) or {}
    dt = imp.get(env, "sim", sim, "dt", (int, float))
    decimation = imp.get(env, "", env.data, "decimation", int)
    scene = imp.get(env, "", env.data, "scene", dict) or {}
    robot = imp.get(env, "scene", scene, "robot", dict) or {}
    pose = imp.default_pose(env, robot)
    joints, action = imp.actions(env, agent)
    observation = imp.observation(env, group)
    period = float(dt) * int(decimation) if dt and decimation else None

    inputs, outputs = _onnx_io(model)
    size = sum(_term_size(term, len(joints)) for term in observation)
    model_section: dict[str, Any] = {"file": "policy.onnx"}
    if len(inputs) != 1:
        imp.errors.append(f"{model}: expected one input (the observation), the model has {[n for n, _ in inputs]}")
    else:
        name, shape = inputs[0]
        model_section["input"] = name
        width = shape[-1] if shape else None
        if isinstance(width, int) and width != size:
            layout = ", ".join(f"{t['name']} {_term_size(t, len(joints))}" for t in observation)
            imp.errors.append(f"{model}: input {name!r} takes {width} values, the observation group {group!r} "
                              f"has {size} ({layout}): was the model exported from this run?")
        if len(shape) == 2:
            model_section["batch"] = "fixed" if shape[0] == 1 else "dynamic"
        elif len(shape) == 1:
            model_section["batch"] = "none"
    if outputs:
        out_name, out_shape = outputs[0]
        model_section["output"] = out_name
        width = out_shape[-1] if out_shape else None
        if isinstance(width, int) and width != len(joints):
            imp.errors.append(f"{model}: output {out_name!r} has {width} values, the action terms drive "
                              f"{len(joints)} joints ({', '.join(joints)})")
    if imp.errors:
        raise IsaacLabImportError(imp.errors)

    data = {
        "version": desc_mod.DESCRIPTION_VERSION,
        "model": model_section,
        "period": period,
        "joints": joints,
        "default_pose": pose,
        "observation": observation,
        "action": action,
        "source": {"kind": "isaaclab rsl_rl run", "run": str(run_dir.resolve()), "root_body": root_body,
                   "period": f"sim.dt {dt!r} x decimation {decimation}"},
    }
    header = (f"Imported from the Isaac Lab run {run_dir.resolve()}\n"
              f"by hil policy import isaaclab (root body {root_body}: goal poses are given to the policy in the\n"
              f"{'world (URDF root link, table level)' if root_body == 'world' else 'base_link'} frame).\n"
              "Edit freely; hil policy inspect checks it against a robot.")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, out_dir / "policy.onnx")
    text = desc_mod.render(data, header)
    (out_dir / desc_mod.FOLDER_FILE).write_text(text, encoding="utf-8")
    return desc_mod.load(out_dir)


def _term_size(term: dict[str, Any], n_actions: int) -> int:
    return {"goal_pose": 7, "last_action": n_actions}.get(term["term"], len(term.get("joints", ())))
