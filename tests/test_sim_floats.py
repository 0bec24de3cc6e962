"""The mock's physics and the node's state reading on plain floats give the numpy form's bits.

Lockstep runs are reproducible for a seed and CI runs against the mock, so
rewriting its per-step arithmetic from six-element numpy arrays to Python
floats (for the robot node's CPU per step) must not move a single bit: the
numpy form is kept here, as it was, and both run the same commands side by
side, with noise and command latency randomized.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from roarm.joints import LOWER, MAX_TORQUE, MAX_VELOCITY, UPPER, pose
from roarm.kinematics import body_position, fk, fk_floats
from schemas.services_pb2 import Randomization
from sim_node.mock import MockBackend


class NumpyMock(MockBackend):
    """The mock's physics as written on numpy arrays (commit 6ddb647)."""

    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None:
        r = randomization
        self.tau = self.nominal_tau * r.mass_scale * r.damping_scale / r.actuator_gain_scale
        self.np_position = position.copy()
        self.np_velocity = np.zeros(6)
        self.np_effort = np.zeros(6)

    def _advance(self, target: np.ndarray) -> None:
        target = np.minimum(np.maximum(target, LOWER), UPPER)
        wanted = target + (self.np_position - target) * math.exp(-self.dt / self.tau)
        max_step = MAX_VELOCITY * self.dt
        moved = np.minimum(np.maximum(wanted - self.np_position, -max_step), max_step)
        new = np.minimum(np.maximum(self.np_position + moved, LOWER), UPPER)
        self.np_velocity = (new - self.np_position) / self.dt
        self.np_effort = np.minimum(np.maximum((target - new) * MAX_TORQUE, -MAX_TORQUE), MAX_TORQUE)
        self.np_position = new

    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.np_position, self.np_velocity, self.np_effort

    def _measure_floats(self) -> tuple[list[float], list[float], list[float]]:
        return self.np_position.tolist(), self.np_velocity.tolist(), self.np_effort.tolist()


def bits(values: Sequence[float] | np.ndarray) -> list[int]:
    return [struct.unpack("<q", struct.pack("<d", float(v)))[0] for v in values]


EDGES = [0.0, -0.0, *LOWER.tolist(), *UPPER.tolist(), 10.0, -10.0]
joint = st.one_of(st.floats(-4, 4), st.sampled_from(EDGES))
targets = st.lists(st.lists(joint, min_size=6, max_size=6), min_size=1, max_size=40)
randomizations = st.builds(
    Randomization, mass_scale=st.floats(0.5, 2.0), damping_scale=st.floats(0.5, 2.0),
    friction_scale=st.just(1.0), actuator_gain_scale=st.floats(0.5, 2.0),
    obs_noise_std=st.sampled_from([0.0, 0.001, 0.05]), latency_steps=st.integers(0, 3))


@settings(max_examples=150, deadline=None)
@given(commands=targets, randomization=randomizations, seed=st.integers(0, 2**32 - 1),
       dt=st.sampled_from([0.01, 0.02, 0.005]))
def test_mock_on_floats_matches_numpy_bit_for_bit(commands: list[list[float]], randomization: Randomization,
                                                  seed: int, dt: float) -> None:
    new, old = MockBackend(dt=dt), NumpyMock(dt=dt)
    for sim in (new, old):
        sim.connect()
        sim.reset(pose("home"), seed, randomization)
    for command in commands:
        for sim in (new, old):
            sim.apply_command(np.array(command))
            sim.step()
        a, b = new.read_state(), old.read_state()
        for x, y in ((a.position, b.position), (a.velocity, b.velocity), (a.effort, b.effort), (a.tcp, b.tcp)):
            assert bits(x) == bits(y)
        floats = new.read_floats()
        assert [bits(v) for v in floats] == [bits(v) for v in (b.position, b.velocity, b.effort, b.tcp)]
        assert [bits(v) for v in old.read_floats()] == [bits(v) for v in floats]
    assert np.all(new.position >= LOWER) and np.all(new.position <= UPPER)


@settings(max_examples=300, deadline=None)
@given(q=st.lists(st.floats(-7, 7), min_size=6, max_size=6))
def test_fk_floats_is_fk(q: list[float]) -> None:
    array = np.array(q)
    assert bits(fk_floats(q)) == bits(fk(array)) == bits(fk_floats(array))
    assert bits(body_position(array, "hand_tcp")) == bits(fk(array))
