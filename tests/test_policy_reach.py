"""The shipped reach policy meets its bar in MuJoCo, and training is reproducible from a seed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from policy_node.policy.load import load_policy
from tools.training.train_reach import TrainConfig, evaluate, export, train
from roarm.kinematics import sample_reachable_goal

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize("randomized", [False, True], ids=["nominal", "randomized"])
def test_reach_policy_reaches_18_of_20_random_goals_in_mujoco_lockstep(randomized: bool) -> None:
    """In-process lockstep (read state, act, safety check, step) on the MuJoCo backend.

    The goals come from a seed the training never used; tests/test_policy_node.py
    drives the same model through real processes. "randomized" varies the
    physics per goal as scenarios/reach.yaml does (masses, damping, friction,
    gains, joint-measurement noise) plus one period of command latency.
    """
    from tools.training.rollout import rollout
    from roarm.joints import pose
    from schemas.services_pb2 import RandomizationRanges
    from sim_node.backends import make_backend
    from sim_node.randomization import sample

    policy = load_policy(str(ROOT / "policies" / "reach.onnx"))
    rng = np.random.default_rng(20_251_123)
    goals = [sample_reachable_goal(rng) for _ in range(20)]
    ranges = RandomizationRanges(mass_scale=0.1, damping_scale=0.1, friction_scale=0.1, actuator_gain_scale=0.05,
                                 obs_noise_std=0.0005, max_latency_steps=1)
    backend = make_backend("mujoco", dt=policy.requirements.period)
    backend.connect()
    try:
        if randomized:
            errors = np.array([rollout(backend, policy, goal, pose("home"), 300, seed=i,
                                       randomization=sample(ranges, i)).final_error for i, goal in enumerate(goals)])
        else:
            errors = evaluate(backend, policy, goals, steps=300)
    finally:
        backend.close()
    reached = int(np.sum(errors < 0.015))
    assert reached >= 18, f"reached {reached}/20; errors (mm) {np.round(errors * 1e3, 1).tolist()}"


def test_training_is_reproducible_from_a_seed(tmp_path: Path) -> None:
    """A tiny run twice with one seed gives the same ONNX bytes; another seed does not."""
    tiny = TrainConfig(seed=3, episode_steps=40, expert_episodes=3, dagger_rounds=1, dagger_episodes=2,
                       hidden=8, epochs=2, dagger_epochs=1)
    files = []
    for name, config in (("a", tiny), ("b", tiny), ("c", dataclasses.replace(tiny, seed=4))):
        mlp, spec = train(config, log=lambda _text: None)
        path = tmp_path / f"{name}.onnx"
        export(mlp, spec, path, config.seed)
        files.append(path.read_bytes())
    assert files[0] == files[1]
    assert files[0] != files[2]
    exported = load_policy(str(tmp_path / "a.onnx"))
    assert [t.kind for t in exported.description.observation] == ["joint_pos", "tcp_error"]
    assert exported.requirements.period == tiny.dt


def test_hil_policy_train_reach_for_another_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command end to end (made tiny): --dt lands in the model's spec and the evaluation runs."""
    from click.testing import CliRunner

    from tools.training import train_reach
    from tools.cli import main

    tiny = {"episode_steps": 30, "expert_episodes": 2, "dagger_rounds": 1, "dagger_episodes": 1, "hidden": 8,
            "epochs": 1, "dagger_epochs": 1}
    monkeypatch.setattr(train_reach.TrainConfig, "__init__",
                        _with_defaults(train_reach.TrainConfig.__init__, tiny))
    out = tmp_path / "reach_25hz.onnx"
    result = CliRunner().invoke(main, ["policy", "train-reach", "--seed", "1", "--dt", "0.04", "--out", str(out),
                                       "--eval-goals", "2"])
    assert result.exit_code == 0, result.output
    assert "evaluation: " in result.output and "/2 goals within 15 mm" in result.output
    assert load_policy(str(out)).requirements.period == 0.04


def _with_defaults(init: object, defaults: dict[str, object]) -> object:
    def patched(self: object, *args: object, **kwargs: object) -> None:
        init(self, *args, **{**defaults, **kwargs})  # type: ignore[operator]

    return patched
