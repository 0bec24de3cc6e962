"""The robot-backend interface every simulator implements (its factory: sim_node/backends.py).

In the spirit of LeRobot's ``Robot``: a handful of methods, nothing about the
bus. The node (sim_node/node.py) and in-process users (training-data
generation) drive a backend the same way:

    backend = make_backend("mujoco", dt=0.01)
    backend.connect()
    backend.reset(pose("home"), seed=3, randomization=Randomization())
    for _ in range(100):
        backend.apply_command(target)
        backend.step()
        state = backend.read_state()
    backend.close()

The parts every simulator shares (command latency, observation noise, the
TCP by forward kinematics, the bookkeeping of the scene objects) live in
``SimBackend`` so a backend only writes its physics, and where it can, its
cameras (``render``) and the placing of scene objects (``_apply_scene``).

The scene (docs/contracts.md, "Scene") is SCENE_OBJECTS: a goal marker and
three target cubes that cameras see and nothing touches, out of view until
placed. Placements outlive a reset; only ``place`` changes them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bus.errors import Failed, HilError
from roarm.camera import CameraSpec, check_unique
from roarm.joints import LOWER, MAX_VELOCITY, UPPER
from roarm.kinematics import fk, fk_floats
from schemas.services_pb2 import Randomization

# The objects of every simulated scene: the goal marker (a sphere of 12 mm
# radius) and three cubes of 30 mm, to be placed on the table (z = 0.015).
SCENE_OBJECTS = ("goal", "target_red", "target_green", "target_blue")
HIDDEN_POSITION = (0.0, 0.0, -5.0)  # below the floor: out of every camera's view
UPRIGHT = (1.0, 0.0, 0.0, 0.0)


class BackendUnavailable(Failed, RuntimeError):
    """The simulator this backend needs is not installed here; says what to do."""


class CameraUnsupported(HilError, ValueError):
    """A camera asked of a backend that renders none (the kinematic mock)."""


class SceneError(HilError, ValueError):
    """A placement that names no object of the scene or no valid pose."""


@dataclass(frozen=True)
class Placement:
    """Where one scene object is: its centre (m, world), orientation (w, x, y, z), or hidden."""

    name: str
    position: tuple[float, float, float] = HIDDEN_POSITION
    quat: tuple[float, float, float, float] = UPRIGHT
    hidden: bool = True

    def check(self, known: Iterable[str]) -> None:
        """Raise SceneError unless this placement can be applied."""
        known = tuple(known)
        if self.name not in known:
            raise SceneError(f"no scene object {self.name!r} (known: {', '.join(known) or 'none'})")
        if self.hidden:
            return
        if len(self.position) != 3 or not all(math.isfinite(v) for v in self.position):
            raise SceneError(f"{self.name}: position needs 3 finite values (m, world frame), got {list(self.position)}")
        if len(self.quat) != 4 or not all(math.isfinite(v) for v in self.quat) or \
                abs(math.sqrt(sum(v * v for v in self.quat)) - 1.0) > 1e-3:
            raise SceneError(f"{self.name}: quat needs 4 values (w, x, y, z) of norm 1, got {list(self.quat)}")


@dataclass
class RobotState:
    """One measurement, bus joint order, SI units and radians."""

    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    tcp: np.ndarray


def nominal() -> Randomization:
    """The randomization that changes nothing (every scale 1, no noise, no latency)."""
    return Randomization(mass_scale=1.0, damping_scale=1.0, friction_scale=1.0, actuator_gain_scale=1.0)


class SimBackend(ABC):
    """Base of the simulated backends.

    Subclasses implement the physics (``_reset_physics``, ``_advance``,
    ``_measure``); this class applies what is the same everywhere: the
    command delay line (latency in control periods), Gaussian observation
    noise on positions drawn once per step from the reset's seed (so a
    state read twice is the same state), and the TCP by ``roarm.kinematics``
    of the measured joints (the bus contract).
    """

    name: str = "sim"
    # Whether ``render`` draws cameras (mock: no).
    renders: bool = False
    scene_objects: tuple[str, ...] = SCENE_OBJECTS

    def __init__(self, dt: float = 0.01, cameras: Sequence[CameraSpec] = ()) -> None:
        if not dt > 0:
            raise ValueError(f"control period dt must be > 0, got {dt}")
        self.dt = float(dt)
        self.cameras = tuple(cameras)
        check_unique(self.cameras)
        if self.cameras and not self.renders:
            raise CameraUnsupported(f"the {self.name} backend renders no cameras (asked for "
                                    f"{', '.join(c.name for c in self.cameras)}): use --backend mujoco")
        self.scene = {name: Placement(name) for name in self.scene_objects}
        self.model_hash = ""
        self.randomization = nominal()
        self._rng = np.random.default_rng(0)
        self._commanded = np.zeros(6)
        self._delay: deque[np.ndarray] = deque()
        self._noise = np.zeros(6)
        self._noise_floats = [0.0] * 6

    # -- the interface ----------------------------------------------------------
    @abstractmethod
    def connect(self) -> None:
        """Load the model / start the simulator. Call once before reset."""

    def reset(self, position: np.ndarray, seed: int, randomization: Randomization | None = None) -> None:
        """Put the arm at rest at ``position`` with the given physics variation.

        ``seed`` drives everything random after the reset (observation noise),
        so the same (position, seed, randomization) replays bit for bit.
        """
        position = np.clip(np.asarray(position, dtype=float), LOWER, UPPER)
        self.randomization = randomization if randomization is not None else nominal()
        self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
        self._commanded = position.copy()
        self._delay = deque(position.copy() for _ in range(int(self.randomization.latency_steps)))
        self._reset_physics(position, self.randomization)
        self._draw_noise()

    def apply_command(self, target: np.ndarray) -> None:
        """Set the position target (already checked by roarm.safety); held until replaced."""
        self._commanded = np.asarray(target, dtype=float).copy()

    def step(self) -> None:
        """Advance one control period toward the (possibly delayed) target."""
        self._delay.append(self._commanded)
        effective = self._delay.popleft()
        self._advance(effective)
        self._draw_noise()

    def read_state(self) -> RobotState:
        position, velocity, effort = self._measure()
        measured = position + self._noise
        return RobotState(measured, velocity.copy(), effort.copy(), fk(measured))

    def read_floats(self) -> tuple[list[float], list[float], list[float], tuple[float, float, float]]:
        """``read_state`` as Python floats (position, velocity, effort, tcp), the same bits.

        What the node puts in every JointState: protobuf fills repeated
        fields from lists, and six-value numpy arithmetic costs more in call
        overhead than it computes. The lists are the caller's to keep.
        """
        position, velocity, effort = self._measure_floats()
        measured = [p + n for p, n in zip(position, self._noise_floats)]
        return measured, list(velocity), list(effort), fk_floats(measured)

    def close(self) -> None:
        """Release the simulator. Safe to call twice."""

    # -- cameras and scene ------------------------------------------------------
    def render(self, camera: str, out: np.ndarray) -> None:
        """Camera ``camera``'s view of the current state as RGB rows top down
        into ``out`` ((height, width, 3) uint8, e.g. a FrameBuffer's pixels)."""
        raise CameraUnsupported(f"the {self.name} backend renders no cameras")

    def place(self, placements: Sequence[Placement]) -> None:
        """Move scene objects (all checked before any moves); they stay across resets."""
        for placement in placements:
            placement.check(self.scene_objects)
        for placement in placements:
            self.scene[placement.name] = placement
        if placements:
            self._apply_scene()

    def _apply_scene(self) -> None:
        """Put every object of ``self.scene`` where it says (a backend that draws them)."""

    @property
    def physics_info(self) -> dict[str, str]:
        """Facts for NodeInfo.extra (physics dt, solver, ...)."""
        return {}

    # -- what a simulator writes -----------------------------------------------
    @abstractmethod
    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None: ...

    @abstractmethod
    def _advance(self, target: np.ndarray) -> None:
        """Run one control period of physics driving toward ``target``."""

    @abstractmethod
    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """True (position, velocity, effort), bus order."""

    def _measure_floats(self) -> tuple[Sequence[float], Sequence[float], Sequence[float]]:
        """``_measure`` as sequences of Python floats (a backend that keeps floats returns them as they are)."""
        position, velocity, effort = self._measure()
        return position.tolist(), velocity.tolist(), effort.tolist()

    def _draw_noise(self) -> None:
        std = float(self.randomization.obs_noise_std)
        self._noise = self._rng.normal(0.0, std, 6) if std > 0 else np.zeros(6)
        self._noise_floats = self._noise.tolist()

    def __enter__(self) -> SimBackend:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def physics_substeps(dt: float, physics_dt: float) -> int:
    """Physics steps per control period; a period that is not a whole number
    of them would make the control rate drift against the simulated clock."""
    substeps = dt / physics_dt
    if abs(substeps - round(substeps)) > 1e-6 or round(substeps) < 1:
        raise ValueError(f"control period {dt} s must be a whole number of physics steps of {physics_dt} s "
                         f"(give a physics step that divides it, e.g. --physics-dt {dt / math.ceil(dt / physics_dt):.7g})")
    return int(round(substeps))


def servo_ramp(ctrl: np.ndarray, target: np.ndarray, physics_dt: float, substeps: int) -> np.ndarray:
    """Servo set-points for the physics steps of one control period, (substeps, 6).

    A servo cannot turn faster than MAX_VELOCITY however far the command
    jumps: the set-point moves toward the (limit-clamped) target by at most
    ``MAX_VELOCITY * physics_dt`` per physics step. Toward a fixed target
    that is a clip at k steps' worth of travel, so one expression gives the
    whole period (physics backends feed row k to physics step k).
    """
    travel = np.outer(np.arange(1, substeps + 1), MAX_VELOCITY * physics_dt)
    error = np.minimum(np.maximum(target, LOWER), UPPER) - ctrl
    return ctrl + np.minimum(np.maximum(error, -travel), travel)
