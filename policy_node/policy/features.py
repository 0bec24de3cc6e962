"""A PolicySpec's observation vector and action mapping, for the training script.

Training builds the very vector the policy node later feeds the exported
model: ``spec.description()`` is the description the node reads back from
the model's ``roarm.*`` metadata, and the ObservationBuilder and
ActionMapper below are the node's own. Nothing here computes a feature.
"""

from __future__ import annotations

import numpy as np

from policy_node.policy.action import ActionMapper
from policy_node.policy.base import Observation
from policy_node.policy.observation import MissingGoal, ObservationBuilder
from policy_node.policy.spec import PolicySpec

# Kept under its old name: training and tests catch it when a goal is missing.
MissingInput = MissingGoal


class Features:
    """Observation -> model input vector for one spec, built by the node's ObservationBuilder."""

    def __init__(self, spec: PolicySpec) -> None:
        self.builder = ObservationBuilder(spec.description())
        self._last = np.zeros(len(spec.joint_names))

    def __call__(self, obs: Observation, out: np.ndarray) -> np.ndarray:
        """Write the vector into ``out`` (float32, the observation's size) and return it."""
        out[:] = self.builder.build(obs.position, obs.velocity, self._last, obs.target, obs.tcp)[0]
        return out


def fill(spec: PolicySpec, obs: Observation, out: np.ndarray) -> np.ndarray:
    """One-off form of Features (builds the builder each call: keep a Features for a loop)."""
    return Features(spec)(obs, out)


class ActionMap:
    """Model output -> absolute targets (6, bus order), by the node's ActionMapper."""

    def __init__(self, spec: PolicySpec) -> None:
        self.mapper = ActionMapper(spec.description(), np.asarray(spec.lower), np.asarray(spec.upper))

    def __call__(self, output: np.ndarray, position: np.ndarray) -> np.ndarray:
        return self.mapper(output, position)


def to_targets(spec: PolicySpec, output: np.ndarray, position: np.ndarray) -> np.ndarray:
    """One-off form of ActionMap (training, tests)."""
    return ActionMap(spec)(np.asarray(output, dtype=float), position)
