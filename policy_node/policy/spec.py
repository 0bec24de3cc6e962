"""The observation/action spec a policy was made for, and the check against a robot.

A trained model only works on the robot it was trained for: same joints in
the same order, same limits, same control period. The spec travels inside the
ONNX file (``metadata_props``, keys below) so a model cannot be run against
the wrong arm by accident; ``check_against`` compares it with the robot's
``info`` at start and names the first field that differs.

Observation layout: comma-separated terms, concatenated in order into one
float32 vector (see ``TERMS``). Actions: ``absolute`` (joint targets) or
``delta`` (target = measured position + output * scale), in ``joint_names``
order, clipped to ``lower``/``upper``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bus.errors import Failed
from roarm.joints import ROARM_M3
from schemas import services_pb2

SPEC_VERSION = "1"
# Control period the scripted policies assume when nobody tells them better.
DEFAULT_DT = 0.02

# term -> number of floats it contributes to the observation vector
TERMS: dict[str, int] = {
    "position": 6,      # measured joint positions (rad), bus order
    "velocity": 6,      # measured joint velocities (rad/s)
    "sin_position": 6,  # sin of each position: angles without the wrap-around jump
    "cos_position": 6,
    "tcp": 3,           # measured TCP position (m, world)
    "goal_tcp": 3,      # Cartesian goal (m, world)
    "tcp_error": 3,     # goal_tcp - tcp (m)
}
ACTION_KINDS = ("absolute", "delta")

# ONNX metadata_props keys
KEY_VERSION = "roarm.spec_version"
KEY_OBSERVATION = "roarm.observation"
KEY_JOINTS = "roarm.joint_names"
KEY_ACTION_KIND = "roarm.action_kind"
KEY_ACTION_SCALE = "roarm.action_scale"
KEY_LOWER = "roarm.lower"
KEY_UPPER = "roarm.upper"
KEY_DT = "roarm.dt"

# Limits agree when they differ by less than this (rad): float round trips
# through protobuf and JSON must not count as a mismatch.
LIMIT_TOLERANCE = 1e-3


class SpecError(Failed, ValueError):
    """A spec that is malformed, or that does not match the robot; says which field."""

    def __init__(self, field_name: str, text: str) -> None:
        super().__init__(f"{field_name}: {text}")
        self.field = field_name


@dataclass(frozen=True)
class PolicySpec:
    """What a policy observes and how its output is turned into joint targets.

    ``dt`` 0 means the policy works at any control period (scripted policies
    derive their speed limits from the period they are given).
    """

    observation: tuple[str, ...] = ("position",)
    joint_names: tuple[str, ...] = ROARM_M3.names
    action_kind: str = "absolute"
    action_scale: tuple[float, ...] = (1.0,) * 6
    lower: tuple[float, ...] = ROARM_M3.lower
    upper: tuple[float, ...] = ROARM_M3.upper
    dt: float = 0.0
    version: str = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        for name in ("observation", "joint_names"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        for name in ("action_scale", "lower", "upper"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        for term in self.observation:
            if term not in TERMS:
                raise SpecError("observation", f"unknown term {term!r}; known: {', '.join(TERMS)}")
        if self.action_kind not in ACTION_KINDS:
            raise SpecError("action_kind", f"{self.action_kind!r} is not one of {ACTION_KINDS}")
        n = len(self.joint_names)
        for name in ("action_scale", "lower", "upper"):
            if len(getattr(self, name)) != n:
                raise SpecError(name, f"has {len(getattr(self, name))} values for {n} joints")
        if not (math.isfinite(self.dt) and self.dt >= 0):
            raise SpecError("dt", f"{self.dt!r} is not a control period in seconds")
        if self.version != SPEC_VERSION:
            raise SpecError("spec_version", f"model spec version {self.version!r}, this node reads {SPEC_VERSION!r}")

    @property
    def observation_size(self) -> int:
        return sum(TERMS[t] for t in self.observation)

    @property
    def needs_goal(self) -> bool:
        return any(t in ("goal_tcp", "tcp_error") for t in self.observation)

    def to_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` that carry this spec."""
        return {
            KEY_VERSION: self.version,
            KEY_OBSERVATION: ",".join(self.observation),
            KEY_JOINTS: json.dumps(list(self.joint_names)),
            KEY_ACTION_KIND: self.action_kind,
            KEY_ACTION_SCALE: json.dumps(list(self.action_scale)),
            KEY_LOWER: json.dumps(list(self.lower)),
            KEY_UPPER: json.dumps(list(self.upper)),
            KEY_DT: repr(float(self.dt)),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> PolicySpec:
        """Read a spec back; a missing or unreadable key is a SpecError naming it."""

        def get(key: str) -> str:
            if key not in meta:
                raise SpecError(key, "missing from the model's metadata (was it exported by hil policy?)")
            return meta[key]

        def floats(key: str) -> tuple[float, ...]:
            text = get(key)
            try:
                values = json.loads(text)
                return tuple(float(v) for v in values)
            except (ValueError, TypeError) as exc:
                raise SpecError(key, f"not a JSON list of numbers: {exc}") from None

        joints_text = get(KEY_JOINTS)
        try:
            names = tuple(str(n) for n in json.loads(joints_text))
        except (ValueError, TypeError) as exc:
            raise SpecError(KEY_JOINTS, f"not a JSON list of names: {exc}") from None
        dt_text = get(KEY_DT)
        try:
            dt = float(dt_text)
        except ValueError:
            raise SpecError(KEY_DT, f"{dt_text!r} is not a number") from None
        return cls(
            observation=tuple(t.strip() for t in get(KEY_OBSERVATION).split(",") if t.strip()),
            joint_names=names,
            action_kind=get(KEY_ACTION_KIND),
            action_scale=floats(KEY_ACTION_SCALE),
            lower=floats(KEY_LOWER),
            upper=floats(KEY_UPPER),
            dt=dt,
            version=get(KEY_VERSION),
        )

    def describe(self) -> dict[str, str]:
        """Short facts for ``info.extra``."""
        return {
            "observation": ",".join(self.observation),
            "action_kind": self.action_kind,
            "joint_names": ",".join(self.joint_names),
            "spec_dt": f"{self.dt:g}",
        }


def check_against(spec: PolicySpec, robot: services_pb2.NodeInfo) -> None:
    """Refuse a robot whose joints, limits or control period differ from the spec.

    Raises SpecError naming the first field that differs, with both values,
    because "model does not fit" alone sends people hunting.
    """
    names = tuple(robot.joint_names)
    if names != spec.joint_names:
        raise SpecError("joint_names", f"model {list(spec.joint_names)}, robot {list(names)}")
    for field_name, ours, theirs in (("lower", spec.lower, robot.lower), ("upper", spec.upper, robot.upper)):
        _check_values(field_name, spec.joint_names, ours, theirs)
    if spec.dt > 0:
        if not robot.dt > 0:
            raise SpecError("dt", f"model {spec.dt:g} s, robot reports no control period")
        # A realtime robot with a longer period (the real arm: its serial link
        # carries 25-37 commands/s) gets the same per-step actions less often,
        # so it moves slower than trained, never faster; lockstep must match.
        slower_realtime = robot.mode == "realtime" and robot.dt > spec.dt
        if abs(robot.dt - spec.dt) > 1e-6 * max(spec.dt, robot.dt) and not slower_realtime:
            raise SpecError("dt", f"model {spec.dt:g} s, robot {robot.dt:g} s")


def _check_values(field_name: str, names: Sequence[str], ours: Sequence[float], theirs: Sequence[float]) -> None:
    if len(theirs) != len(ours):
        raise SpecError(field_name, f"model has {len(ours)} values, robot {len(theirs)}")
    for name, a, b in zip(names, ours, theirs, strict=True):
        if abs(a - b) > LIMIT_TOLERANCE:
            raise SpecError(f"{field_name}[{name}]", f"model {a:.4f}, robot {b:.4f}")
