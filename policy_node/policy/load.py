"""``load_policy(source)``: the one place that knows every kind of policy source.

The kinds (``onnx_model``, ``scripted``, ``see_reach``, ``python``) import the
Policy API in ``base``; this module imports the kinds, so nothing below it
needs to know about them and no module of the library imports one that
imports it back.

A source is one of:

- ``scripted:hold``, ``scripted:waypoints``, ``scripted:ik``, ``scripted:see_reach`` (a camera);
- a Python policy, ``module:factory`` or ``path/to/file.py:factory`` (python.py);
- a policy folder (``policy.yaml`` beside the model);
- a description file (``policy.yaml``, ``MODEL.onnx.yaml``);
- a model file (``MODEL.onnx``): described by ``MODEL.onnx.yaml`` beside
  it, else by its folder's ``policy.yaml``, else by its ``roarm.*``
  metadata (what ``hil policy train-reach`` writes).

Every description goes through ``description.load``: one code path for YAML
and metadata alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from policy_node.policy import description, python
from policy_node.policy.base import Policy
from policy_node.policy.onnx_model import OnnxPolicy
from policy_node.policy.scripted import DEFAULT_DT, SCRIPTED, UnknownScripted, make
from policy_node.policy.see_reach import SeeReach

SCRIPTED_PREFIX = "scripted:"
# Every ``scripted:NAME``: the blind ones of scripted.py and the camera one of see_reach.py.
SCRIPTED_NAMES = (*SCRIPTED, "see_reach")


def make_scripted(name: str, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None) -> Policy:
    """A scripted policy by name (UnknownScripted lists the known ones).

    ``max_velocity`` (rad/s per joint) is the robot's speed limit from its
    ``info``; the servo's top speed when not given.
    """
    if name == "see_reach":
        return SeeReach(dt, max_velocity)
    if name not in SCRIPTED:
        raise UnknownScripted(f"unknown scripted policy {name!r}; known: {', '.join(SCRIPTED_NAMES)}")
    return make(name, dt=dt, max_velocity=max_velocity)


def load_description(source: str | Path) -> description.PolicyDescription:
    """The description of a folder, YAML or model source (PolicyDescriptionError when it does not validate)."""
    return description.load(Path(source))


def load_policy(source: str | Path, *, dt: float = DEFAULT_DT, max_velocity: Sequence[float] | None = None) -> Policy:
    """A runnable policy for ``source`` (module docstring).

    ``dt`` and ``max_velocity`` are the robot's control period and speed
    limits (from its ``info``): scripted policies derive their speed from
    them, Python ones see the period; a model carries its own period in its
    description.
    """
    text = str(source)
    if text.startswith(SCRIPTED_PREFIX):
        return make_scripted(text.split(":", 1)[1], dt=dt, max_velocity=max_velocity)
    if python.is_python_source(text):
        return python.make(text, dt=dt)
    path = Path(text)
    if not path.exists():
        kinds = (f"a model file (.onnx), a policy folder, a policy.yaml, module:factory, "
                 f"or scripted:{{{'|'.join(SCRIPTED_NAMES)}}}")
        raise description.PolicyDescriptionError([f"{path} does not exist; a policy source is {kinds}"])
    return OnnxPolicy(load_description(path))
