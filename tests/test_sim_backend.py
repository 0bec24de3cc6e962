"""The backend interface, the mock backend and domain randomization (in process)."""

from __future__ import annotations

import numpy as np
import pytest

from roarm.joints import LOWER, MAX_VELOCITY, UPPER, pose
from roarm.kinematics import fk
from schemas.services_pb2 import Randomization, RandomizationRanges
from sim_node.backend import nominal
from sim_node.backends import make_backend
from sim_node.randomization import randomization_hash, sample


def test_make_backend_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="known: mock, mujoco, isaac"):
        make_backend("gazebo")


def test_mock_tracks_with_speed_and_joint_limits() -> None:
    with make_backend("mock", dt=0.01) as sim:
        sim.reset(pose("home"), seed=0)
        target = np.array([2.0, 3.0, 1.0, -0.5, 0.2, 1.0])  # shoulder beyond its limit
        sim.apply_command(target)
        previous = sim.read_state().position
        for _ in range(200):
            sim.step()
            state = sim.read_state()
            assert np.all(np.abs(state.position - previous) <= MAX_VELOCITY * 0.01 + 1e-12)
            assert np.all(state.position >= LOWER) and np.all(state.position <= UPPER)
            previous = state.position
        expected = np.clip(target, LOWER, UPPER)
        np.testing.assert_allclose(state.position, expected, atol=1e-3)
        np.testing.assert_allclose(state.tcp, fk(state.position))


def test_latency_delays_the_command_by_whole_periods() -> None:
    with make_backend("mock") as sim:
        sim.reset(pose("home"), 0, Randomization(mass_scale=1, damping_scale=1, friction_scale=1,
                                                 actuator_gain_scale=1, latency_steps=3))
        sim.apply_command(pose("home") + 0.5)
        moved_at = None
        for k in range(10):
            sim.step()
            if moved_at is None and abs(sim.read_state().position[0]) > 1e-9:
                moved_at = k
        assert moved_at == 3


def test_observation_noise_is_seeded_and_stable_within_a_step() -> None:
    noisy = Randomization(mass_scale=1, damping_scale=1, friction_scale=1, actuator_gain_scale=1, obs_noise_std=0.01)
    with make_backend("mock") as sim:
        sim.reset(pose("home"), 7, noisy)
        first = sim.read_state().position
        np.testing.assert_array_equal(first, sim.read_state().position)
        assert np.max(np.abs(first - pose("home"))) > 1e-4
        sim.reset(pose("home"), 7, noisy)
        np.testing.assert_array_equal(first, sim.read_state().position)
        sim.reset(pose("home"), 8, noisy)
        assert not np.array_equal(first, sim.read_state().position)


def test_randomization_sampling_is_seeded_bounded_and_hashed() -> None:
    ranges = RandomizationRanges(mass_scale=0.3, damping_scale=0.5, friction_scale=1.0, actuator_gain_scale=0.1,
                                 obs_noise_std=0.002, max_latency_steps=2)
    draws = [sample(ranges, seed) for seed in range(100)]
    assert sample(ranges, 5) == draws[5]
    assert randomization_hash(sample(ranges, 5)) == randomization_hash(draws[5])
    assert len({randomization_hash(d) for d in draws}) == 100
    for d in draws:
        assert 0.7 <= d.mass_scale <= 1.3 and 0.5 <= d.damping_scale <= 1.5
        assert 0.05 <= d.friction_scale <= 2.0  # a spread of 1 never yields a non-positive scale
        assert 0.0 <= d.obs_noise_std <= 0.002 and 0 <= d.latency_steps <= 2
    assert {d.latency_steps for d in draws} == {0, 1, 2}
    assert sample(RandomizationRanges(), 3) == nominal()
    assert sample(None, 3) == nominal()
    assert len(randomization_hash(nominal())) == 16


def test_mock_randomization_slows_tracking() -> None:
    def distance_after_5_steps(applied: Randomization) -> float:
        with make_backend("mock") as sim:
            sim.reset(np.zeros(6), 0, applied)
            sim.apply_command(np.full(6, 0.1))
            for _ in range(5):
                sim.step()
            return float(sim.read_state().position[0])

    weak = nominal()
    weak.actuator_gain_scale = 0.5
    assert distance_after_5_steps(weak) < distance_after_5_steps(nominal())


def test_servo_ramp_is_the_stepwise_rate_limit() -> None:
    from sim_node.backend import servo_ramp

    rng = np.random.default_rng(9)
    for _ in range(50):
        ctrl = rng.uniform(LOWER, UPPER)
        target = rng.uniform(LOWER - 1, UPPER + 1)  # sometimes beyond the limits
        ramp = servo_ramp(ctrl, target, 0.002, 5)
        expected, current = [], ctrl.copy()
        for _ in range(5):  # the plain per-physics-step rate limit it replaces
            current = current + np.clip(np.clip(target, LOWER, UPPER) - current, -MAX_VELOCITY * 0.002,
                                        MAX_VELOCITY * 0.002)
            expected.append(current)
        np.testing.assert_allclose(ramp, np.array(expected), atol=1e-12)


@pytest.mark.parametrize("ranges, field", [
    (RandomizationRanges(mass_scale=float("nan")), "mass_scale"),
    (RandomizationRanges(damping_scale=-0.1), "damping_scale"),
    (RandomizationRanges(actuator_gain_scale=5.0), "actuator_gain_scale"),
    (RandomizationRanges(obs_noise_std=float("inf")), "obs_noise_std"),
    (RandomizationRanges(max_latency_steps=4_000_000_000), "max_latency_steps"),
])
def test_unusable_randomization_ranges_are_refused(ranges: RandomizationRanges, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        sample(ranges, 0)
