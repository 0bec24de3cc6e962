"""``load_policy(source)``: the one place that knows every kind of policy.

The kinds (``onnx_model``, ``scripted``) import the Policy API in ``base``;
this module imports the kinds, so nothing below it needs to know about them
and no module of the library imports one that imports it back.
"""

from __future__ import annotations

from pathlib import Path

from policy_node.policy.base import Policy
from policy_node.policy.onnx_model import OnnxPolicy
from policy_node.policy.scripted import SCRIPTED, make
from policy_node.policy.spec import DEFAULT_DT

SCRIPTED_PREFIX = "scripted:"


def load_policy(source: str, *, dt: float = DEFAULT_DT) -> Policy:
    """An ONNX model (path) or a scripted policy (``scripted:NAME``).

    ``dt`` is the control period scripted policies use for their speed
    limits; an ONNX model carries its own in its spec.
    """
    if source.startswith(SCRIPTED_PREFIX):
        return make(source.split(":", 1)[1], dt=dt)
    path = Path(source)
    if path.suffix != ".onnx":
        raise ValueError(f"policy source {source!r}: expected a .onnx file or scripted:{{{'|'.join(SCRIPTED)}}}")
    if not path.is_file():
        raise FileNotFoundError(f"policy model {path} does not exist")
    return OnnxPolicy(path)
