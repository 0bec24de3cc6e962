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
        # The state as Python floats: six values per step cost less in plain
        # arithmetic than in numpy calls (position, velocity, effort below: numpy copies of them).
        self._q = [0.0] * 6
        self._qd = [0.0] * 6
        self._effort = [0.0] * 6
        self.model_hash = hashlib.sha256(f"mock tau={tau!r}".encode()).hexdigest()
        self._limits = tuple(zip(LOWER.tolist(), UPPER.tolist(), (MAX_VELOCITY * self.dt).tolist(), strict=True))

    @property
    def position(self) -> np.ndarray:
        return np.array(self._q)

    @property
    def velocity(self) -> np.ndarray:
        return np.array(self._qd)

    @property
    def effort(self) -> np.ndarray:
        return np.array(self._effort)

    def connect(self) -> None:
        """Nothing to load."""

    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None:
        r = randomization
        self.tau = self.nominal_tau * r.mass_scale * r.damping_scale / r.actuator_gain_scale
        self._q = np.asarray(position, dtype=float).tolist()
        self._qd = [0.0] * 6
        self._effort = [0.0] * 6

    def _advance(self, target: np.ndarray) -> None:
        """One period per joint, in the order (and with the tie rules) of numpy's
        minimum/maximum on arrays, so the result is the same bits the numpy form gave:
        clamp the target to the limits, decay toward it, limit the step to the
        speed and the result to the limits."""
        decay = math.exp(-self.dt / self.tau)
        dt = self.dt
        position, velocity, effort = [], [], []
        for t, p, (lo, hi, max_step) in zip(target.tolist(), self._q, self._limits, strict=True):
            t = t if t > lo else lo
            t = t if t < hi else hi
            moved = t + (p - t) * decay - p
            moved = moved if moved > -max_step else -max_step
            moved = moved if moved < max_step else max_step
            new = p + moved
            new = new if new > lo else lo
            new = new if new < hi else hi
            velocity.append((new - p) / dt)
            # A servo's load grows with its tracking error; saturates at stall.
            load = (t - new) * MAX_TORQUE
            load = load if load > -MAX_TORQUE else -MAX_TORQUE
            effort.append(load if load < MAX_TORQUE else MAX_TORQUE)
            position.append(new)
        self._q, self._qd, self._effort = position, velocity, effort

    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self._q), np.array(self._qd), np.array(self._effort)

    def _measure_floats(self) -> tuple[list[float], list[float], list[float]]:
        return self._q, self._qd, self._effort
