"""A policy's state, saved before a step and put back after it: ask one step twice without advancing twice.

``hil bag check-policy`` asks a step again with the goal before the newest
when the newest may have arrived too late (tools/bag/check_policy.py); the
second try must start where the first did.

Everything is put back *in place*, never by rebinding to a copy: a policy
may hold one array in two places (an ONNX feed dict and the observation
builder's buffer, the recurrent state and the feed), and a copy bound to one
of them would cut the link. So:

- a numpy array gets its old values written back into it;
- a dict or a list gets its old entries back (each restored the same way);
- an object with attributes (a policy, its builder, a Python policy's user
  object) gets its old attributes back (each restored the same way), and
  loses the ones the step added;
- anything else (numbers, strings, tuples, an onnxruntime session, a
  function) is bound again as it was: immutable, or holding no episode
  state the harness can see.

Objects are followed to ``MAX_DEPTH`` levels and each once (cycles).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any

import numpy as np

MAX_DEPTH = 8
_OPAQUE = (str, bytes, int, float, bool, complex, tuple, frozenset, type, ModuleType, FunctionType)


@dataclass
class _Saved:
    """What restoring one value needs: its kind and its saved contents."""

    kind: str  # "array", "dict", "list", "object" or "as_is"
    contents: Any = None


def _save(value: object, depth: int, seen: set[int]) -> _Saved:
    if isinstance(value, np.ndarray):
        return _Saved("array", value.copy())
    if value is None or isinstance(value, _OPAQUE) or depth >= MAX_DEPTH or id(value) in seen:
        return _Saved("as_is")
    seen.add(id(value))
    if isinstance(value, dict):
        return _Saved("dict", [(k, v, _save(v, depth + 1, seen)) for k, v in value.items()])
    if isinstance(value, list):
        return _Saved("list", [(v, _save(v, depth + 1, seen)) for v in value])
    try:
        attributes = vars(value)
    except TypeError:  # no __dict__ (slots, a native object): nothing we can put back
        return _Saved("as_is")
    return _Saved("object", [(k, v, _save(v, depth + 1, seen)) for k, v in attributes.items()])


def _restore(value: Any, saved: _Saved) -> Any:
    """``value`` with its saved contents back in place; returns the object to bind (always ``value``)."""
    if saved.kind == "array":
        if value.flags.writeable and value.shape == saved.contents.shape:
            value[...] = saved.contents
        return value
    if saved.kind == "dict":
        value.clear()
        value.update({k: _restore(v, s) for k, v, s in saved.contents})
    elif saved.kind == "list":
        value[:] = [_restore(v, s) for v, s in saved.contents]
    elif saved.kind == "object":
        attributes = vars(value)
        attributes.clear()
        attributes.update({k: _restore(v, s) for k, v, s in saved.contents})
    return value


class Snapshot:
    """The state of ``policy`` now; ``restore()`` puts it back (module docstring)."""

    def __init__(self, policy: object) -> None:
        self.policy = policy
        self.saved = _save(policy, 0, set())

    def restore(self) -> None:
        _restore(self.policy, self.saved)
