"""Observation -> model input vector, model output -> joint targets, per a PolicySpec.

Shared by the ONNX policy at run time and the training script, so the model
is trained on exactly the vector it is later fed.
"""

from __future__ import annotations

import numpy as np

from bus.errors import HilError
from policy_node.policy.base import Observation, cartesian_goal
from policy_node.policy.spec import TERMS, PolicySpec
from roarm.kinematics import fk


class MissingInput(HilError, ValueError):
    """The observation lacks something the spec needs (e.g. a Cartesian goal)."""


def measured_tcp(obs: Observation) -> np.ndarray:
    """The TCP the robot sent, or forward kinematics of the measured joints."""
    if obs.tcp is not None:
        return obs.tcp
    return np.asarray(fk(obs.position), dtype=float)


def fill(spec: PolicySpec, obs: Observation, out: np.ndarray) -> np.ndarray:
    """Write the observation vector into ``out`` (preallocated, float32) and return it."""
    i = 0
    goal = None
    tcp = None
    for term in spec.observation:
        size = TERMS[term]
        if term == "position":
            value = obs.position
        elif term == "velocity":
            value = obs.velocity
        elif term == "sin_position":
            value = np.sin(obs.position)
        elif term == "cos_position":
            value = np.cos(obs.position)
        else:
            tcp = measured_tcp(obs) if tcp is None else tcp
            if term == "tcp":
                value = tcp
            else:
                goal = cartesian_goal(obs.goal) if goal is None else goal
                if goal is None:
                    raise MissingInput(f"observation term {term!r} needs a Cartesian goal on task/goal")
                value = goal if term == "goal_tcp" else goal - tcp
        out[i : i + size] = value
        i += size
    return out


class ActionMap:
    """Model output -> absolute targets: scale, add to the position if delta, clip.

    The spec's tuples become arrays once here, not on every control step.
    """

    def __init__(self, spec: PolicySpec) -> None:
        self.delta = spec.action_kind == "delta"
        self.scale = np.asarray(spec.action_scale, dtype=float)
        self.lower = np.asarray(spec.lower, dtype=float)
        self.upper = np.asarray(spec.upper, dtype=float)

    def __call__(self, output: np.ndarray, position: np.ndarray) -> np.ndarray:
        action = output.reshape(-1) * self.scale
        if self.delta:
            action += position
        return np.minimum(np.maximum(action, self.lower, out=action), self.upper, out=action)


def to_targets(spec: PolicySpec, output: np.ndarray, position: np.ndarray) -> np.ndarray:
    """One-off form of ActionMap (training, tests)."""
    return ActionMap(spec)(np.asarray(output, dtype=float), position)
