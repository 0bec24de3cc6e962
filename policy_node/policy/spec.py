"""The ``roarm.*`` ONNX metadata that ``hil policy train-reach`` writes into its models.

A trained model only works on the robot it was trained for: same joints in
the same order, same limits, same control period. ``PolicySpec`` is the
writer's side: the spec travels inside the ONNX file (``metadata_props``,
keys below). Reading it is not done here: ``description.from_metadata``
turns the keys into a ``PolicyDescription``, the same form a ``policy.yaml``
gives, and ``compat.check_fit`` compares that with the robot (one code path
for every policy). ``PolicySpec.description()`` is that reading, for the
training script, which must build the very vector the node later feeds.

Observation layout: comma-separated terms, concatenated in order into one
float32 vector (see ``TERMS``). Actions: ``absolute`` (joint targets) or
``delta`` (target = measured position + output * scale), in ``joint_names``
order, clipped to ``lower``/``upper``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from bus.errors import Failed
from policy_node.policy.description import PolicyDescription, from_metadata
from roarm.joints import ROARM_M3

SPEC_VERSION = "1"

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


class SpecError(Failed, ValueError):
    """A spec that is malformed; says which field."""

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

    def description(self, model: Path | None = None) -> PolicyDescription:
        """The description a model carrying this spec is run with (``model`` need not exist yet)."""
        return from_metadata(self.to_metadata(), Path(model or "model.onnx"), check_files=False)
