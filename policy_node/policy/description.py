"""The policy description: everything the harness must know to run a policy trained elsewhere.

A model file alone does not say what its input vector means or what its
output drives. The description says it, beside the model, in ``policy.yaml``
(a policy folder) or ``MODEL.onnx.yaml``; the ``roarm.*`` ONNX metadata that
``hil policy`` writes is read into the very same form (``from_metadata``
builds the dictionary a YAML file would hold, then one validator runs). Every
mistake is reported as ``file:line: field: problem`` with how to fix it.

File format (all keys but ``observation`` optional)::

    version: 1
    model: {file: policy.onnx, input: obs, output: actions, batch: fixed, dtype: float32}
    period: 0.0333          # s; the control period it was trained at (null: any)
    joints: [base_link_to_link1, link1_to_link2, ...]   # what it drives, its order
    default_pose: {base_link_to_link1: 0.0, ...}       # or a list in `joints` order
    observation:            # concatenated in this order
      - joint_pos_rel                                  # a bare term name, or:
      - {term: goal_pose, body: gripper_link, frame: world, quat: wxyz, scale: 1.0}
    normalize: {mean: [...], std: [...], clip: 10.0}   # whole vector, after the terms
    action: {mode: offset, scale: 0.5, offset: 0.0, clip: 1.0, hold: default}
    recurrent: [{input: h_in, output: h_out}]
    limits: {lower: [...], upper: [...]}               # per policy joint, checked against the robot
    images:                 # camera frames as model tensors of their own (policy_node/policy/image_inputs.py)
      - {camera: front, input: image, size: [64, 48], layout: NCHW, dtype: float32, channels: rgb,
         scale: 0.0039215686, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], max_age_ms: 100}

Joint names are the URDF's (``base_link_to_link1``) or the bus's (``base``).
Each observation term turns ``raw`` into ``clip(raw + offset) * scale``
(Isaac Lab clips before it scales); ``normalize`` then applies
``clip((x - mean) / std)`` to the whole vector, which is what SB3's
VecNormalize keeps (give ``var`` and ``epsilon`` instead of ``std`` to copy
its statistics as they are).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bus.errors import HilError
from bus.yamlsource import Source, YamlError, child, parse
from bus.fields import MISSING, Fields, shown
from policy_node.policy.image_inputs import ImageInput, image_data, parse_images
from roarm.joints import LOWER, NAMES, UPPER, URDF_NAMES
from roarm.kinematics import BODY_NAMES

DESCRIPTION_VERSION = 1
FOLDER_FILE = "policy.yaml"

JOINT_TERMS = ("joint_pos", "joint_pos_rel", "joint_vel", "joint_vel_rel", "sin", "cos")
GOAL_TERMS = ("goal_position", "goal_pose", "tcp_error")
TERM_KINDS = (*JOINT_TERMS, "last_action", "goal_position", "goal_pose", "tcp", "tcp_error", "gripper", "constant")
ACTION_MODES = ("absolute", "delta", "offset")
HOLD_MODES = ("current", "default")
FRAMES = ("world", "base")
QUAT_ORDERS = ("wxyz", "xyzw")
BATCH_KINDS = ("fixed", "dynamic", "none")
DTYPES = ("float32", "float64", "float16")
BODIES = ("tcp", *(b for b in BODY_NAMES if b != "hand_tcp"))
BODY_ALIASES = {"hand_tcp": "tcp"}
FRAME_ALIASES = {"base_link": "base"}

_TOP_KEYS = ("version", "model", "period", "joints", "default_pose", "observation", "normalize", "action",
             "recurrent", "limits", "images", "source")
_TERM_KEYS: dict[str, tuple[str, ...]] = {
    **{kind: ("joints",) for kind in JOINT_TERMS},
    "last_action": (),
    "goal_position": ("body", "frame"),
    "goal_pose": ("body", "frame", "quat", "default_quat"),
    "tcp": ("body", "frame"),
    "tcp_error": ("body",),
    "gripper": (),
    "constant": ("value",),
}
_COMMON_TERM_KEYS = ("term", "name", "scale", "clip", "offset")


class PolicyDescriptionError(HilError, ValueError):
    """A policy description that cannot be used; one message per problem, each naming file, line and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class ModelSpec:
    """The model file and how to feed it.

    ``input``/``output`` None: the model's only one (the first output when
    it has several is not guessed: the loader of the model must insist).
    ``batch`` None: read it from the model's input shape.
    """

    file: str
    path: Path
    input: str | None = None
    output: str | None = None
    batch: str | None = None
    dtype: str = "float32"


@dataclass(frozen=True)
class ObservationTerm:
    """One slice of the observation vector.

    ``joints`` are bus indices (``joint_names`` as written); ``body`` is
    ``tcp`` or a URDF link; ``default_quat`` (w, x, y, z) stands in when a
    goal carries no orientation. ``scale``/``offset`` have ``size`` values.
    """

    kind: str
    name: str
    size: int
    joints: tuple[int, ...] = ()
    joint_names: tuple[str, ...] = ()
    body: str = "tcp"
    frame: str = "world"
    quat_order: str = "wxyz"
    default_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    value: tuple[float, ...] = ()
    scale: tuple[float, ...] | None = None
    clip: tuple[float, float] | None = None
    offset: tuple[float, ...] | None = None

    @property
    def needs_goal(self) -> bool:
        return self.kind in GOAL_TERMS


@dataclass(frozen=True)
class Normalize:
    """Whole-vector ``clip((x - mean) / std, -clip, clip)``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    clip: float | None = None


@dataclass(frozen=True)
class ActionSpec:
    """Raw output -> joint targets, per policy joint (see policy_node.policy.action)."""

    mode: str = "absolute"
    scale: tuple[float, ...] = ()
    offset: tuple[float, ...] = ()
    clip: tuple[float, float] | None = None
    hold: str = "current"


@dataclass(frozen=True)
class RecurrentPair:
    """A state the model returns as ``output`` and takes back as ``input`` next step."""

    input: str
    output: str


@dataclass(frozen=True)
class PolicyDescription:
    source: str
    model: ModelSpec
    joints: tuple[str, ...]
    joint_index: tuple[int, ...]
    default_pose: tuple[float, ...]
    observation: tuple[ObservationTerm, ...]
    action: ActionSpec
    normalize: Normalize | None = None
    period: float | None = None
    recurrent: tuple[RecurrentPair, ...] = ()
    limits: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    images: tuple[ImageInput, ...] = ()

    @property
    def observation_size(self) -> int:
        return sum(term.size for term in self.observation)

    @property
    def action_size(self) -> int:
        return len(self.joints)

    @property
    def needs_goal(self) -> bool:
        return any(term.needs_goal for term in self.observation)

    @property
    def goal_bodies(self) -> frozenset[str]:
        """The bodies the policy was trained to bring to its goal (``tcp``, ``gripper_link``...).

        The observation passes a goal on as given; a goal for another body is
        the caller's mismatch to report before a run.
        """
        return frozenset(term.body for term in self.observation if term.needs_goal)

    def layout(self) -> list[tuple[int, int, str]]:
        """(start, stop, label) of every term, for ``inspect`` and error messages."""
        out, start = [], 0
        for term in self.observation:
            label = term.name if term.name == term.kind else f"{term.name} ({term.kind})"
            out.append((start, start + term.size, label))
            start += term.size
        return out


# -- joint and body names -------------------------------------------------------------

def joint_index(name: str) -> int | None:
    """Bus index of a joint named by its bus or URDF name, or None."""
    if name in NAMES:
        return NAMES.index(name)
    if name in URDF_NAMES:
        return URDF_NAMES.index(name)
    return None


def _joint_hint() -> str:
    return f"the RoArm-M3's joints are {', '.join(URDF_NAMES)} (or by bus name: {', '.join(NAMES)})"


# -- loading ----------------------------------------------------------------------------

def description_path(path: Path) -> Path | None:
    """The description file that belongs to ``path`` (a folder, a YAML, or a model), or None.

    For a model: ``MODEL.onnx.yaml`` beside it, else its folder's ``policy.yaml``.
    """
    path = Path(path)
    if path.is_dir():
        candidate = path / FOLDER_FILE
        return candidate if candidate.is_file() else None
    if path.suffix in (".yaml", ".yml"):
        return path
    beside = path.with_name(path.name + ".yaml")
    if beside.is_file():
        return beside
    folder = path.with_name(FOLDER_FILE)
    return folder if folder.is_file() else None


def load(path: Path) -> PolicyDescription:
    """The description of a policy folder, a ``policy.yaml``/``MODEL.onnx.yaml``, or a model file.

    A model without a YAML beside it is read from its ``roarm.*`` metadata.
    """
    path = Path(path)
    yaml_path = description_path(path)
    if yaml_path is not None:
        try:
            text = yaml_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyDescriptionError([f"{yaml_path}: cannot read it: {exc.strerror or exc}"]) from None
        except UnicodeDecodeError as exc:
            raise PolicyDescriptionError([f"{yaml_path}: not UTF-8 text: {exc}"]) from None
        desc = loads(text, yaml_path)
        if path.suffix == ".onnx" and desc.model.path.resolve() != path.resolve():
            raise PolicyDescriptionError([
                f"{yaml_path}: model.file: describes {desc.model.file!r}, not {path.name!r}: give the folder, "
                f"or describe {path.name} in {path.name}.yaml"])
        return desc
    if path.is_dir():
        raise PolicyDescriptionError([
            f"{path}: no {FOLDER_FILE} in this folder: write one beside the model "
            f"(hil policy init MODEL.onnx --out {path} writes a template)"])
    if not path.is_file():
        raise PolicyDescriptionError([f"{path}: no such file or folder"])
    return from_model_metadata(path)


def loads(text: str, file: Path) -> PolicyDescription:
    """Parse and validate description text; ``file`` names it in errors and anchors ``model.file``."""
    file = Path(file)
    try:
        source = parse(text, str(file))
    except YamlError as exc:
        raise PolicyDescriptionError([str(exc)]) from None
    return build(source, file.parent, default_model=_default_model(file))


def _default_model(file: Path) -> str | None:
    """``MODEL.onnx.yaml`` describes ``MODEL.onnx``; a folder's only ``.onnx`` is its model."""
    if file.name.endswith(".onnx.yaml"):
        return file.name[: -len(".yaml")]
    models = sorted(p.name for p in file.parent.glob("*.onnx")) if file.parent.is_dir() else []
    return models[0] if len(models) == 1 else None


def from_model_metadata(model: Path) -> PolicyDescription:
    """Read the ``roarm.*`` metadata of an ONNX file (what ``hil policy train-reach`` writes)."""
    import onnx  # here, not at the top: a YAML description never pays onnx's import time

    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValueError, OSError... for a bad file
        raise PolicyDescriptionError([f"{model}: not an ONNX model onnx can read: {exc}"]) from None
    meta = {p.key: p.value for p in proto.metadata_props}
    return from_metadata(meta, model)


# The roarm.* metadata keys (policy_node/spec.py writes them) and the terms they name.
_META_TERMS = {
    "position": {"term": "joint_pos"},
    "velocity": {"term": "joint_vel"},
    "sin_position": {"term": "sin"},
    "cos_position": {"term": "cos"},
    "tcp": {"term": "tcp"},
    "goal_tcp": {"term": "goal_position"},
    "tcp_error": {"term": "tcp_error"},
}
_META_KEYS = ("roarm.spec_version", "roarm.observation", "roarm.joint_names", "roarm.action_kind",
              "roarm.action_scale", "roarm.lower", "roarm.upper", "roarm.dt")


def from_metadata(meta: Mapping[str, str], model: Path, *, check_files: bool = True) -> PolicyDescription:
    """The description carried by ``roarm.*`` ONNX metadata, validated like a YAML one.

    ``check_files`` False: the model need not exist yet (training builds the
    description of the model it is about to write).
    """
    model = Path(model)
    where = f"{model} (metadata)"
    missing = [key for key in _META_KEYS if key not in meta]
    if missing:
        raise PolicyDescriptionError([
            f"{model}: no policy description: no {model.name}.yaml or {FOLDER_FILE} beside it and "
            f"{', '.join(missing)} missing from the model's metadata. Describe the model in "
            f"{model.name}.yaml (hil policy init {model.name} --out DIR writes a template)"])
    errors: list[str] = []

    def json_list(key: str) -> list[Any]:
        try:
            value = json.loads(meta[key])
        except ValueError as exc:
            errors.append(f"{where}: {key}: not JSON: {exc}")
            return []
        if not isinstance(value, list):
            errors.append(f"{where}: {key}: expected a JSON list, got {shown(value)}")
            return []
        return value

    if meta["roarm.spec_version"] != "1":
        errors.append(f"{where}: roarm.spec_version: {meta['roarm.spec_version']!r}, this harness reads '1'")
    terms = [t.strip() for t in meta["roarm.observation"].split(",") if t.strip()]
    observation: list[Any] = []
    for term in terms:
        if term not in _META_TERMS:
            errors.append(f"{where}: roarm.observation: unknown term {term!r}; known: {', '.join(_META_TERMS)}")
        else:
            observation.append({**_META_TERMS[term], "joints": list(NAMES)} if _META_TERMS[term]["term"] in JOINT_TERMS
                               else dict(_META_TERMS[term]))
    joints = json_list("roarm.joint_names")
    try:
        dt = float(meta["roarm.dt"])
    except ValueError:
        errors.append(f"{where}: roarm.dt: {meta['roarm.dt']!r} is not a number")
        dt = 0.0
    scale, lower, upper = json_list("roarm.action_scale"), json_list("roarm.lower"), json_list("roarm.upper")
    if errors:
        raise PolicyDescriptionError(errors)
    data = {
        "model": {"file": model.name},
        "joints": joints,
        "observation": observation,
        "action": {"mode": meta["roarm.action_kind"], "scale": scale},
        "period": dt if dt > 0 else None,
        "limits": {"lower": lower, "upper": upper},
    }
    return build(Source(where, data), model.parent, default_model=model.name, check_files=check_files)


# -- validation ---------------------------------------------------------------------------

def build(source: Source, folder: Path, default_model: str | None = None, *, check_files: bool = True) -> PolicyDescription:
    """Validate parsed data into a PolicyDescription, or raise with every problem found."""
    f = Fields(source)
    data = f.mapping("", source.data, _TOP_KEYS, required=("observation",))
    version = data.get("version", DESCRIPTION_VERSION)
    if version != DESCRIPTION_VERSION:
        f.error("version", f"this harness reads version {DESCRIPTION_VERSION}, got {shown(version)}")
    model = _model(f, data.get("model", MISSING), folder, default_model, check_files)
    period = data.get("period")
    period = None if period is None else f.number("period", period, None, gt=0.0)

    names, index = _joints(f, data.get("joints", MISSING))
    default_pose = _default_pose(f, data.get("default_pose", MISSING), names, index)
    action = _action(f, data.get("action", MISSING), names)
    observation = _observation(f, data.get("observation", MISSING), names, index, len(names))
    size = sum(term.size for term in observation)
    normalize = _normalize(f, data.get("normalize", MISSING), size)
    recurrent = _recurrent(f, data.get("recurrent", MISSING))
    limits = _limits(f, data.get("limits", MISSING), names)
    images = parse_images(f, data.get("images", MISSING))
    provenance = data.get("source") or {}
    if not isinstance(provenance, dict):
        f.error("source", f"expected a mapping of notes (where the policy came from), got {shown(provenance)}")
        provenance = {}
    if f.errors:
        raise PolicyDescriptionError(f.errors)
    return PolicyDescription(
        source=source.file, model=model, joints=names, joint_index=index, default_pose=default_pose,
        observation=tuple(observation), action=action, normalize=normalize, period=period,
        recurrent=recurrent, limits=limits, provenance={str(k): str(v) for k, v in provenance.items()},
        images=images,
    )


def _model(f: Fields, value: Any, folder: Path, default_model: str | None, check_files: bool = True) -> ModelSpec:
    m = f.mapping("model", value, ("file", "input", "output", "batch", "dtype"))
    file = f.string("model.file", m.get("file", MISSING), default_model)
    path = folder / (file or "")
    if file is None:
        f.error("model", "missing field 'file': name the model file (relative to this description's folder)")
    elif check_files and not path.is_file():
        f.error("model.file", f"no such file {str(path)!r}: the path is relative to the description's folder")
    input_name = f.string("model.input", m.get("input", MISSING))
    output_name = f.string("model.output", m.get("output", MISSING))
    batch = m.get("batch")
    batch = None if batch is None else f.choice("model.batch", batch, BATCH_KINDS, "fixed")
    dtype = f.choice("model.dtype", m.get("dtype", MISSING), DTYPES, "float32")
    return ModelSpec(file or "", path, input_name, output_name, batch, dtype)


def _joints(f: Fields, value: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if value is MISSING:
        return NAMES, tuple(range(len(NAMES)))
    names = f.strings("joints", value, names=True)
    if isinstance(value, list) and not value:
        f.error("joints", "is empty: list the joints the policy drives, in the order of its outputs")
    index: list[int] = []
    for i, name in enumerate(names):
        bus = joint_index(name)
        if bus is None:
            f.error(child("joints", i), f"unknown joint {name!r}: {_joint_hint()}")
        elif bus in index:
            f.error(child("joints", i), f"{name!r} is listed twice (as {NAMES[bus]!r} / {URDF_NAMES[bus]!r})")
        else:
            index.append(bus)
    if len(index) != len(names):
        return names, tuple(index) + (0,) * (len(names) - len(index))
    return names, tuple(index)


def _default_pose(f: Fields, value: Any, names: tuple[str, ...], index: tuple[int, ...]) -> tuple[float, ...]:
    """Six values in bus order; joints not given are 0 (Isaac Lab's default too)."""
    pose = [0.0] * len(NAMES)
    if value is MISSING or value is None:
        return tuple(pose)
    if isinstance(value, list):
        values = f.numbers("default_pose", value, len(names), "numbers (one per joint in `joints`)")
        for bus, v in zip(index, values or (), strict=False):
            pose[bus] = v
        return tuple(pose)
    if not isinstance(value, dict):
        f.error("default_pose", f"expected a mapping joint -> angle (rad) or a list in `joints` order, got {shown(value)}")
        return tuple(pose)
    for name, v in value.items():
        path = child("default_pose", name)
        bus = joint_index(name)
        if bus is None:
            f.error(path, f"unknown joint {name!r}: {_joint_hint()}")
            continue
        number = f.number(path, v, None)
        if number is not None:
            pose[bus] = number
    return tuple(pose)


def _observation(f: Fields, value: Any, names: tuple[str, ...], index: tuple[int, ...],
                 action_size: int) -> list[ObservationTerm]:
    items = f.sequence("observation", value)
    if isinstance(value, list) and not value:
        f.error("observation", f"is empty: list the terms of the model's input in order; known terms: {', '.join(TERM_KINDS)}")
    terms = []
    for i, item in enumerate(items):
        term = _term(f, child("observation", i), item, names, index, action_size)
        if term is not None:
            terms.append(term)
    return terms


def _term(f: Fields, path: str, item: Any, names: tuple[str, ...], index: tuple[int, ...],
          action_size: int) -> ObservationTerm | None:
    if isinstance(item, str):
        item = {"term": item}
    if not isinstance(item, dict):
        f.error(path, f"expected a term name or a mapping with 'term', got {shown(item)}")
        return None
    kind = item.get("term")
    if kind not in TERM_KINDS:
        if kind is None:
            f.error(path, f"missing field 'term'; known terms: {', '.join(TERM_KINDS)}")
        else:
            f.choice(child(path, "term"), kind, TERM_KINDS, "")
        return None
    m = f.mapping(path, item, (*_COMMON_TERM_KEYS, *_TERM_KEYS[kind]))
    name = f.string(child(path, "name"), m.get("name", MISSING), kind) or kind
    joints, joint_names = (index, names) if kind in JOINT_TERMS else ((), ())
    if kind in JOINT_TERMS and "joints" in m:
        joint_names = f.strings(child(path, "joints"), m["joints"], names=True)
        found = []
        for j, jname in enumerate(joint_names):
            bus = joint_index(jname)
            if bus is None:
                f.error(child(child(path, "joints"), j), f"unknown joint {jname!r}: {_joint_hint()}")
            else:
                found.append(bus)
        joints = tuple(found)
    body = f.choice(child(path, "body"), m.get("body", MISSING), BODIES, "tcp", BODY_ALIASES)
    frame = f.choice(child(path, "frame"), m.get("frame", MISSING), FRAMES, "world", FRAME_ALIASES)
    quat_order = f.choice(child(path, "quat"), m.get("quat", MISSING), QUAT_ORDERS, "wxyz")
    default_quat: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0)
    if "default_quat" in m:
        q = f.numbers(child(path, "default_quat"), m["default_quat"], 4, "numbers (w, x, y, z)")
        if q is not None and abs(math.sqrt(sum(v * v for v in q)) - 1.0) > 1e-3:
            f.error(child(path, "default_quat"), f"{list(q)} is not a unit quaternion (w, x, y, z)")
        elif q is not None:
            default_quat = q
    value: tuple[float, ...] = ()
    if kind == "constant":
        raw = m.get("value", MISSING)
        if raw is MISSING:
            f.error(path, "missing field 'value': the number or list of numbers this term always holds")
        elif isinstance(raw, list):
            value = f.numbers(child(path, "value"), raw) or ()
        else:
            single = f.number(child(path, "value"), raw, None)
            value = () if single is None else (single,)
    size = {
        "last_action": action_size, "goal_position": 3, "goal_pose": 7, "tcp": 3, "tcp_error": 3,
        "gripper": 1, "constant": len(value),
    }.get(kind, len(joints))
    what = "values of this term"
    scale = f.per_item(child(path, "scale"), m.get("scale", MISSING), size, None, what)
    offset = f.per_item(child(path, "offset"), m.get("offset", MISSING), size, None, what)
    clip = f.interval(child(path, "clip"), m.get("clip", MISSING))
    return ObservationTerm(
        kind=kind, name=name, size=size, joints=tuple(joints), joint_names=tuple(joint_names), body=body,
        frame=frame, quat_order=quat_order, default_quat=tuple(default_quat), value=value,  # type: ignore[arg-type]
        scale=scale, clip=clip, offset=offset,
    )


def _normalize(f: Fields, value: Any, size: int) -> Normalize | None:
    if value is MISSING or value is None:
        return None
    m = f.mapping("normalize", value, ("mean", "std", "var", "epsilon", "clip"), required=("mean",))
    what = "observation values"
    mean = f.per_item("normalize.mean", m.get("mean", MISSING), size, None, what)
    if "std" in m and "var" in m:
        f.error("normalize", "give 'std', or 'var' (with 'epsilon'), not both")
    if "std" in m:
        std = f.per_item("normalize.std", m["std"], size, None, what)
        if "epsilon" in m:
            f.error("normalize.epsilon", "only applies with 'var' (std = sqrt(var + epsilon))")
    elif "var" in m:
        var = f.per_item("normalize.var", m["var"], size, None, what)
        eps = f.number("normalize.epsilon", m.get("epsilon", MISSING), 1e-8, gt=0.0) or 1e-8
        std = None if var is None else tuple(math.sqrt(max(v, 0.0) + eps) for v in var)
    else:
        f.error("normalize", "missing 'std' (or 'var' as SB3's VecNormalize stores it)")
        std = None
    if std is not None and any(s <= 0 for s in std):
        f.error("normalize.std", "every std must be > 0")
        std = None
    clip = m.get("clip")
    clip = None if clip is None else f.number("normalize.clip", clip, None, gt=0.0)
    if mean is None or std is None:
        return None
    return Normalize(mean, std, clip)


def _action(f: Fields, value: Any, names: tuple[str, ...]) -> ActionSpec:
    m = f.mapping("action", value, ("mode", "scale", "offset", "clip", "hold"))
    mode = f.choice("action.mode", m.get("mode", MISSING), ACTION_MODES, "absolute")
    scale = _per_joint(f, "action.scale", m.get("scale", MISSING), names, 1.0)
    offset = _per_joint(f, "action.offset", m.get("offset", MISSING), names, 0.0)
    clip = f.interval("action.clip", m.get("clip", MISSING))
    hold = f.choice("action.hold", m.get("hold", MISSING), HOLD_MODES, "current")
    return ActionSpec(mode, scale, offset, clip, hold)


def _per_joint(f: Fields, path: str, value: Any, names: tuple[str, ...], default: float) -> tuple[float, ...]:
    """A number, a list in `joints` order, or a mapping joint name -> number."""
    if isinstance(value, dict):
        out = [default] * len(names)
        buses = [joint_index(n) for n in names]
        for key, v in value.items():
            bus = joint_index(key)
            if bus is None or bus not in buses:
                f.error(child(path, key), f"{key!r} is not one of the policy's joints ({', '.join(names)})")
                continue
            number = f.number(child(path, key), v, None)
            if number is not None:
                out[buses.index(bus)] = number
        return tuple(out)
    return f.per_item(path, value, len(names), default, "joints") or (default,) * len(names)


def _recurrent(f: Fields, value: Any) -> tuple[RecurrentPair, ...]:
    pairs = []
    for i, item in enumerate(f.sequence("recurrent", value)):
        path = child("recurrent", i)
        m = f.mapping(path, item, ("input", "output"), required=("input", "output"))
        a, b = f.string(child(path, "input"), m.get("input", MISSING)), f.string(child(path, "output"), m.get("output", MISSING))
        if a and b:
            pairs.append(RecurrentPair(a, b))
    return tuple(pairs)


def _limits(f: Fields, value: Any, names: tuple[str, ...]) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    if value is MISSING or value is None:
        return None
    m = f.mapping("limits", value, ("lower", "upper"), required=("lower", "upper"))
    what = "numbers (one per joint in `joints`)"
    lower = f.numbers("limits.lower", m["lower"], len(names), what) if "lower" in m else None
    upper = f.numbers("limits.upper", m["upper"], len(names), what) if "upper" in m else None
    if lower is None or upper is None:
        return None
    for i, (lo, hi) in enumerate(zip(lower, upper, strict=True)):
        if not lo < hi:
            f.error(child("limits.lower", i), f"{lo:g} is not below upper {hi:g} for {names[i]}")
    return lower, upper


# -- writing ---------------------------------------------------------------------------------

def robot_limits(desc: PolicyDescription) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The policy joints' limits: as the description states them, else the RoArm-M3's."""
    if desc.limits is not None:
        return desc.limits
    return tuple(float(LOWER[i]) for i in desc.joint_index), tuple(float(UPPER[i]) for i in desc.joint_index)


def to_data(desc: PolicyDescription) -> dict[str, Any]:
    """The plain data a ``policy.yaml`` holds for ``desc`` (``loads`` of its dump gives it back)."""
    model: dict[str, Any] = {"file": desc.model.file}
    for key in ("input", "output", "batch"):
        if getattr(desc.model, key) is not None:
            model[key] = getattr(desc.model, key)
    model["dtype"] = desc.model.dtype
    data: dict[str, Any] = {"version": DESCRIPTION_VERSION, "model": model, "period": desc.period,
                            "joints": list(desc.joints)}
    data["default_pose"] = {URDF_NAMES[i]: desc.default_pose[i] for i in range(len(NAMES))}
    data["observation"] = [_term_data(term) for term in desc.observation]
    if desc.normalize is not None:
        norm: dict[str, Any] = {"mean": list(desc.normalize.mean), "std": list(desc.normalize.std)}
        if desc.normalize.clip is not None:
            norm["clip"] = desc.normalize.clip
        data["normalize"] = norm
    action: dict[str, Any] = {"mode": desc.action.mode, "scale": _compact(desc.action.scale),
                              "offset": _compact(desc.action.offset)}
    if desc.action.clip is not None:
        action["clip"] = list(desc.action.clip)
    action["hold"] = desc.action.hold
    data["action"] = action
    if desc.recurrent:
        data["recurrent"] = [{"input": p.input, "output": p.output} for p in desc.recurrent]
    if desc.limits is not None:
        data["limits"] = {"lower": list(desc.limits[0]), "upper": list(desc.limits[1])}
    if desc.images:
        data["images"] = [image_data(image) for image in desc.images]
    if desc.provenance:
        data["source"] = dict(desc.provenance)
    return data


def _compact(values: tuple[float, ...]) -> float | list[float]:
    return values[0] if values and all(v == values[0] for v in values) else list(values)


def _term_data(term: ObservationTerm) -> dict[str, Any]:
    out: dict[str, Any] = {"term": term.kind}
    if term.name != term.kind:
        out["name"] = term.name
    if term.kind in JOINT_TERMS:
        out["joints"] = list(term.joint_names)
    keys = _TERM_KEYS[term.kind]
    if "body" in keys:
        out["body"] = term.body
    if "frame" in keys:
        out["frame"] = term.frame
    if "quat" in keys:
        out["quat"] = term.quat_order
        if term.default_quat != (1.0, 0.0, 0.0, 0.0):
            out["default_quat"] = list(term.default_quat)
    if term.kind == "constant":
        out["value"] = list(term.value)
    for key in ("scale", "offset"):
        if getattr(term, key) is not None:
            out[key] = _compact(getattr(term, key))
    if term.clip is not None:
        out["clip"] = list(term.clip)
    return out


def dumps(desc: PolicyDescription, header: str = "") -> str:
    """``policy.yaml`` text for ``desc``, with ``header`` as leading comment lines."""
    return render(to_data(desc), header)


def render(data: dict[str, Any], header: str = "") -> str:
    """``policy.yaml`` text for plain description data (what ``to_data`` returns or an importer builds)."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
