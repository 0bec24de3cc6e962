"""``load_policy(source)``: the one place that knows every kind of policy.

The kinds (``onnx_model``, ``scripted``, ``python``) import the Policy API in ``base``;
this module imports the kinds, so nothing below it needs to know about them
and no module of the library imports one that imports it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from policy_node.policy import python
from policy_node.policy.base import Policy
from policy_node.policy.onnx_model import OnnxPolicy
from policy_node.policy.scripted import SCRIPTED, make
from policy_node.policy.spec import DEFAULT_DT

SCRIPTED_PREFIX = "scripted:"


def load_policy(source: str, *, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None) -> Policy:
    """An ONNX model (path), a scripted policy (``scripted:NAME``) or a Python one (``module:factory``).

    ``dt`` and ``max_velocity`` are the robot's control period and speed
    limits (from its ``info``): scripted policies derive their speed from
    them, Python ones see the period; an ONNX model carries its own period.
    """
    if source.startswith(SCRIPTED_PREFIX):
        return make(source.split(":", 1)[1], dt=dt, max_velocity=max_velocity)
    if python.is_python_source(source):
        return python.make(source, dt=dt)
    path = Path(source)
    if path.suffix != ".onnx":
        raise ValueError(f"policy source {source!r}: expected a .onnx file, scripted:{{{'|'.join(SCRIPTED)}}} "
                         "or module:factory")
    if not path.is_file():
        raise FileNotFoundError(f"policy model {path} does not exist")
    return OnnxPolicy(path)
