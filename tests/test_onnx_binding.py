"""A model without images runs through onnxruntime's IOBinding (its buffers bound once); the answers are the same bits
``session.run`` gives for the same input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policy_node.policy.load import load_policy
from policy_node.policy.onnx_model import OnnxPolicy

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("source", ["reach.onnx", "isaaclab_reach_imported", "sb3_reach", "plain_reach"])
def test_a_bound_model_answers_bit_for_bit_as_session_run(source: str) -> None:
    policy = load_policy(str(ROOT / "policies" / source))
    assert isinstance(policy, OnnxPolicy)
    assert policy._binding is not None  # no image inputs: bound at load
    rng = np.random.default_rng(0)
    for _ in range(50):
        features = rng.normal(size=policy.builder.vector.shape).astype(policy.builder.vector.dtype)
        bound = policy.infer(features).copy()
        unbound = policy.session.run(policy._fetch, policy._feed)[0].reshape(-1)
        assert np.array_equal(bound, unbound)
