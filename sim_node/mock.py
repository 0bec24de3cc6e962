"""The kinematic mock arm: numpy only, deterministic, what CI runs against.

Each joint tracks its target as a first-order system (time constant
``tau``), limited to the joint speed and the joint limits. No gravity, no
contacts: it answers "does the policy drive the joints where it should",
fast and the same on every machine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from roarm.joints import LOWER, MAX_TORQUE, MAX_VELOCITY, UPPER
from roarm.camera import CameraSpec
from schemas.services_pb2 import Randomization
from sim_node.backend import SimBackend

TAU_S = 0.05  # nominal tracking time constant of a position servo


class MockBackend(SimBackend):
    """First-order tracking; randomization maps onto the time constant.

    A heavier (mass), more damped (damping) or weaker (actuator gain) arm
    tracks more slowly: tau = TAU_S * mass * damping / gain. Friction has no
    kinematic meaning here and is ignored; noise and latency apply as in
    every backend.
    """

    name = "mock"

    def __init__(self, dt: float = 0.01, tau: float = TAU_S, cameras: Sequence[CameraSpec] = ()) -> None:
        super().__init__(dt, cameras)  # cameras: CameraUnsupported (the mock keeps its scene, draws nothing)
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.nominal_tau = float(tau)
        self.tau = self.nominal_tau
        self.position = np.zeros(6)
        self.velocity = np.zeros(6)
        self.effort = np.zeros(6)
        self.model_hash = hashlib.sha256(f"mock tau={tau!r}".encode()).hexdigest()
        self._max_step = MAX_VELOCITY * self.dt

    def connect(self) -> None:
        """Nothing to load."""

    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None:
        r = randomization
        self.tau = self.nominal_tau * r.mass_scale * r.damping_scale / r.actuator_gain_scale
        self.position = position.copy()
        self.velocity = np.zeros(6)
        self.effort = np.zeros(6)

    def _advance(self, target: np.ndarray) -> None:
        # np.minimum/np.maximum rather than np.clip: same result, a fraction of
        # the call overhead on 6-vectors, and this runs every control step.
        target = np.minimum(np.maximum(target, LOWER), UPPER)
        wanted = target + (self.position - target) * math.exp(-self.dt / self.tau)
        max_step = self._max_step
        moved = np.minimum(np.maximum(wanted - self.position, -max_step), max_step)
        new = np.minimum(np.maximum(self.position + moved, LOWER), UPPER)
        self.velocity = (new - self.position) / self.dt
        # A servo's load grows with its tracking error; saturates at stall.
        self.effort = np.minimum(np.maximum((target - new) * MAX_TORQUE, -MAX_TORQUE), MAX_TORQUE)
        self.position = new

    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.position, self.velocity, self.effort
