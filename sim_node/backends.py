"""``make_backend(name)``: the one place that knows every simulator backend.

The backends import the interface in ``backend``; this module imports the
backends, so the interface does not name its implementations and nothing
imports in a circle. MuJoCo and Isaac Sim themselves are imported by their
backend's ``connect``, so importing this module stays light.
"""

from __future__ import annotations

from typing import Any

from sim_node.backend import SimBackend
from sim_node.isaac_backend import IsaacBackend
from sim_node.mock import MockBackend
from sim_node.mujoco_backend import MujocoBackend

BACKENDS: dict[str, type[SimBackend]] = {
    "mock": MockBackend,
    "mujoco": MujocoBackend,
    "isaac": IsaacBackend,
}


def make_backend(name: str, **config: Any) -> SimBackend:
    """A backend by name (mock, mujoco, isaac), not yet connected."""
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown sim backend {name!r}; known: {', '.join(BACKENDS)}") from None
    return cls(**config)
