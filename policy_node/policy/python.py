"""Policies written in Python (a PyTorch model, a controller): ``module:factory`` -> a Policy.

This is a stable API: what a user's object must offer and what it receives.

    # my_policy.py
    from policy_node.policy.python import Observation

    class MyPolicy:
        period = 0.02                      # optional: the period it was made for (s)
        cameras = ("front",)               # optional: cameras whose frames it sees (obs.images)

        def reset(self) -> None:           # a new episode (the robot was reset)
            ...

        def act(self, obs: Observation):   # -> 6 absolute joint targets (rad, bus order)
            ...

    def make_policy() -> MyPolicy:         # the factory: called once, without arguments
        return MyPolicy()

and then ``hil node policy --policy my_policy:make_policy`` (the module is
imported with the current folder on ``sys.path``, as ``python -m`` does), or
``--policy path/to/my_policy.py:make_policy``, or in a scenario ``policy:
{python: my_policy:make_policy}``.

``act`` receives an ``Observation`` (below), never a protobuf message, and
returns six joint position targets in bus order (``JOINT_NAMES``): a list,
a tuple or an array. A NaN target, an exception, or a wrong number of
values makes the policy node hold the arm (and report it); the robot clamps
every target to the joint limits and speed.

Everything the object keeps between steps is its own business; it must be
deterministic (same observations, same targets) for ``hil bag check-policy``
to replay its runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bus.errors import HilError
from policy_node.policy import base
from policy_node.policy.base import CameraFrame
from policy_node.policy.compat import GOAL_KINDS, CameraNeed, Requirements
from roarm.joints import NAMES
from roarm.kinematics import fk

JOINT_NAMES: tuple[str, ...] = NAMES
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*")
_FACTORY = re.compile(_IDENTIFIER)


class PythonPolicyError(HilError, ValueError):
    """A ``module:factory`` that cannot be imported, called, or does not make a policy (the text says which)."""


@dataclass(frozen=True)
class Goal:
    """The newest goal of the run (``task/goal``), as plain numbers.

    ``kind`` is ``tcp`` (a Cartesian goal: ``position`` (3,) in metres in the
    world frame for ``body``, ``quat`` (4,) w, x, y, z when the goal gives an
    orientation, ``gripper`` an opening in rad or None), ``joints``
    (``joints`` (6,) rad in bus order, NaN for a joint the goal leaves as it
    is) or ``visual`` (bring ``body`` to the object of ``colour``, which the
    policy must find in its camera frames).
    """

    id: str
    kind: str
    position: np.ndarray | None = None
    quat: np.ndarray | None = None
    body: str = "tcp"
    gripper: float | None = None
    joints: np.ndarray | None = None
    tolerance: float = 0.0
    colour: str = ""


@dataclass(frozen=True)
class Observation:
    """What a Python policy sees at one control step.

    ``positions`` / ``velocities``: measured joints (rad, rad/s), bus order
    (``JOINT_NAMES``); ``tcp``: the measured tool centre point (m, world
    frame; forward kinematics of the measured joints when the robot sends
    none); ``goal``: the newest goal or None; ``period``: the robot's control
    period (s); ``step``: the robot's state counter (restarts at 0 on a reset);
    ``images``: camera name -> ``CameraFrame`` (``rgb`` (height, width, 3)
    uint8, ``stamp_ns``, ``intrinsics``...; policy_node.policy.base) for the
    cameras the policy declares in ``cameras``, paired with this state.
    """

    step: int
    period: float
    positions: np.ndarray
    velocities: np.ndarray
    tcp: np.ndarray
    goal: Goal | None = None
    joint_names: tuple[str, ...] = JOINT_NAMES
    images: dict[str, CameraFrame] = field(default_factory=dict)


@runtime_checkable
class UserPolicy(Protocol):
    """What ``module:factory`` must return."""

    def reset(self) -> None:
        """Forget per-episode state."""

    def act(self, obs: Observation) -> Any:
        """Six absolute joint targets (rad, bus order) for ``obs``."""


def goal_of(message: Any) -> Goal | None:
    """A ``roarm.v1.Goal`` as a plain Goal (None for none)."""
    if message is None:
        return None
    which = message.WhichOneof("target")
    if which == "tcp":
        tcp = message.tcp
        quat = np.array(tcp.quat, dtype=float) if len(tcp.quat) == 4 else None
        gripper = float(tcp.gripper) if math.isfinite(tcp.gripper) else None
        return Goal(message.id, "tcp", np.array([tcp.x, tcp.y, tcp.z]), quat, tcp.body or "tcp", gripper,
                    tolerance=float(message.tolerance))
    if which == "joints":
        return Goal(message.id, "joints", joints=base.joint_goal(message, NAMES), tolerance=float(message.tolerance))
    if which == "visual":
        return Goal(message.id, "visual", body=message.visual.body or "tcp", tolerance=float(message.tolerance),
                    colour=message.visual.colour)
    return None


def is_python_source(source: str) -> bool:
    """``module.sub:factory`` or ``path/to/file.py:factory`` (not ``scripted:NAME``, not a plain path)."""
    if source.startswith("scripted:") or ":" not in source:
        return False
    left, right = source.rsplit(":", 1)
    return bool(_FACTORY.fullmatch(right)) and (left.endswith(".py") or bool(_MODULE.fullmatch(left)))


def _import(left: str) -> ModuleType:
    if left.endswith(".py"):
        path = Path(left).expanduser().resolve()
        if not path.is_file():
            raise PythonPolicyError(f"{left}: no such Python file")
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # its sibling modules import as they would beside it
        name = f"_hil_policy_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PythonPolicyError(f"{left}: Python cannot load it as a module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m` would: a module in the current folder imports
    try:
        return importlib.import_module(left)
    except ModuleNotFoundError as exc:
        if exc.name and (left == exc.name or left.startswith(exc.name + ".")):
            raise PythonPolicyError(
                f"cannot import {left!r}: no module named {exc.name!r} (run from the folder that holds it, "
                "install it, or give path/to/file.py:factory)") from None
        raise


def load_factory(source: str) -> tuple[Callable[[], Any], Path | None]:
    """The factory named by ``source`` and the file it lives in."""
    if not is_python_source(source):
        raise PythonPolicyError(f"{source!r}: expected module:factory or path/to/file.py:factory")
    left, right = source.rsplit(":", 1)
    try:
        module = _import(left)
    except PythonPolicyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything while it is imported
        raise PythonPolicyError(f"importing {left!r} failed: {type(exc).__name__}: {exc}{_where(exc)}") from None
    factory = getattr(module, right, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise PythonPolicyError(f"{left!r} has no callable {right!r}" + (f"; it defines {', '.join(found)}" if found else ""))
    file = getattr(module, "__file__", None)
    return factory, Path(file) if file else None


def _where(exc: BaseException) -> str:
    """`` (at file:line)`` of the innermost frame of a user's exception."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f" (at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})" if tb is not None else ""


class PythonPolicy:
    """A user's Python object behind the Policy API of the harness.

    ``name`` is ``python:SOURCE``; ``model_hash`` the sha256 of the module's
    file (what a bag records, so a changed policy file shows); ``requirements``
    say bus joints, every kind of goal (the object gets them all), the
    object's ``period`` if it declares one and the ``cameras`` it declares.
    """

    def __init__(self, source: str, dt: float, factory: Callable[[], Any] | None = None,
                 file: Path | None = None) -> None:
        if factory is None:
            factory, file = load_factory(source)
        try:
            user = factory()
        except Exception as exc:  # noqa: BLE001 - the user's factory may raise anything
            raise PythonPolicyError(f"{source}: the factory raised {type(exc).__name__}: {exc}{_where(exc)}") from None
        missing = [m for m in ("reset", "act") if not callable(getattr(user, m, None))]
        if missing:
            raise PythonPolicyError(f"{source}: the factory returned {type(user).__name__}, which has no "
                                    f"{' and no '.join(m + '()' for m in missing)}: a policy needs reset() and act(obs)")
        if len(inspect.signature(user.act).parameters) != 1:
            raise PythonPolicyError(f"{source}: {type(user).__name__}.act must take one argument (the Observation)")
        period = getattr(user, "period", None)
        if period is not None and not (isinstance(period, (int, float)) and math.isfinite(period) and period > 0):
            raise PythonPolicyError(f"{source}: period {period!r} is not a control period in seconds (> 0) or None")
        cameras = _cameras(source, getattr(user, "cameras", ()))
        self.user = user
        self.source = source
        self.name = f"python:{source}"
        self.model_hash = hashlib.sha256(file.read_bytes()).hexdigest() if file is not None and file.is_file() else ""
        self.dt = float(period) if period else dt
        self.requirements = Requirements(NAMES, None, None, float(period) if period else None,
                                         frozenset(GOAL_KINDS), tuple(CameraNeed(c) for c in cameras))

    def reset(self) -> None:
        self.user.reset()

    def act(self, obs: base.Observation) -> np.ndarray:
        tcp = obs.tcp if obs.tcp is not None else fk(obs.position)
        view = Observation(step=obs.seq, period=self.dt, positions=obs.position.copy(),
                           velocities=obs.velocity.copy(), tcp=np.array(tcp, dtype=float),
                           goal=goal_of(obs.goal), images=dict(obs.images))
        out = np.asarray(self.user.act(view), dtype=float).reshape(-1)
        if out.size != len(NAMES):
            raise PythonPolicyError(f"{self.name}: act returned {out.size} values, expected {len(NAMES)} joint "
                                    f"targets in bus order ({', '.join(NAMES)})")
        return out


def _cameras(source: str, declared: Any) -> tuple[str, ...]:
    """The camera names a user's object declares (``cameras = ("front",)``), checked."""
    names = (declared,) if isinstance(declared, str) else declared
    try:
        names = tuple(names or ())
    except TypeError:
        names = (declared,)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise PythonPolicyError(f"{source}: cameras {declared!r} is not a list of distinct camera names")
    return names


def make(source: str, dt: float) -> PythonPolicy:
    """The Python policy ``source`` names, for a robot with control period ``dt``."""
    return PythonPolicy(source, dt)
