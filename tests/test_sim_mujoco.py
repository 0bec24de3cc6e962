"""The MuJoCo model of the RoArm-M3 against the URDF chain and the servo specs."""

from __future__ import annotations

import numpy as np
import pytest

from roarm.joints import LOWER, MAX_TORQUE, MAX_VELOCITY, UPPER, pose
from roarm.kinematics import fk
from schemas.services_pb2 import RandomizationRanges
from sim_node.backend import nominal
from sim_node.backends import make_backend
from sim_node.mujoco_backend import MujocoBackend
from sim_node.randomization import sample


@pytest.fixture
def sim() -> MujocoBackend:
    backend = make_backend("mujoco", dt=0.01)
    assert isinstance(backend, MujocoBackend)
    backend.connect()
    yield backend
    backend.close()


def test_tcp_site_matches_urdf_chain_within_1mm(sim: MujocoBackend) -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        q = rng.uniform(LOWER, UPPER)
        sim.set_joint_positions(q)
        assert np.linalg.norm(sim.tcp_site() - fk(q)) < 1e-3


@pytest.mark.parametrize("name", ["home", "ready"])
def test_holds_pose_against_gravity_for_5s(sim: MujocoBackend, name: str) -> None:
    target = pose(name)
    sim.reset(target, seed=0, randomization=nominal())
    sim.apply_command(target)
    worst = 0.0
    for _ in range(500):  # 5 s at 10 ms
        sim.step()
        worst = max(worst, float(np.max(np.abs(sim.read_state().position - target))))
    assert worst < 0.01
    effort = sim.read_state().effort
    assert abs(effort[1]) > 0.01  # the shoulder really carries the arm


def test_speed_and_torque_limits(sim: MujocoBackend) -> None:
    sim.reset(pose("home"), seed=0, randomization=nominal())
    target = pose("home")
    target[0] = 2.5  # a 2.5 rad jump of the base
    sim.apply_command(target)
    peak_speed, peak_effort = 0.0, 0.0
    for _ in range(150):
        sim.step()
        state = sim.read_state()
        peak_speed = max(peak_speed, abs(state.velocity[0]))
        peak_effort = max(peak_effort, float(np.max(np.abs(state.effort))))
    assert 0.8 * MAX_VELOCITY[0] < peak_speed < 1.1 * MAX_VELOCITY[0]
    assert peak_effort <= MAX_TORQUE + 1e-9
    assert abs(sim.read_state().position[0] - 2.5) < 0.01


def test_randomization_changes_physics_and_reset_restores_nominal(sim: MujocoBackend) -> None:
    def shoulder_effort() -> float:
        sim.apply_command(pose("home"))
        for _ in range(100):
            sim.step()
        return float(sim.read_state().effort[1])

    sim.reset(pose("home"), 0, nominal())
    base = shoulder_effort()
    heavy = sample(RandomizationRanges(mass_scale=0.5), seed=1)
    assert heavy.mass_scale != 1.0
    sim.reset(pose("home"), 0, heavy)
    assert shoulder_effort() == pytest.approx(base * heavy.mass_scale, rel=0.05)
    sim.reset(pose("home"), 0, nominal())
    assert shoulder_effort() == pytest.approx(base, rel=1e-9)


def test_same_seed_same_trajectory_with_noise_and_latency(sim: MujocoBackend) -> None:
    applied = sample(RandomizationRanges(mass_scale=0.2, obs_noise_std=0.01, max_latency_steps=3), seed=4)

    def run() -> np.ndarray:
        sim.reset(pose("home"), 4, applied)
        rows = []
        for k in range(50):
            sim.apply_command(pose("home") + 0.3 * np.sin(k / 10))
            sim.step()
            s = sim.read_state()
            rows.append(np.concatenate([s.position, s.velocity, s.effort, s.tcp]))
        return np.array(rows)

    np.testing.assert_array_equal(run(), run())


def test_dt_must_be_whole_physics_steps() -> None:
    with pytest.raises(ValueError, match="whole number"):
        MujocoBackend(dt=0.003)
