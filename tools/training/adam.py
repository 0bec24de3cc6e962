"""Weighted least squares by Adam on minibatches: the one fitting loop both trainings share.

Both shipped models (policies/reach.onnx, policies/isaaclab_reach) are checked
to be what their training writes, bit for bit, so the arithmetic here is
fixed: the same operations in the same order, with the matrix products of
``numerics.matmul``. The two differ only in their activation's derivative,
in parameters held fixed, and in how their moment constants were written
(``mix``: ``1 - 0.9`` is not the float ``0.1``, and each committed model
was trained with one of them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tools.training.numerics import matmul

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
# The moments' mixing factors as train_reach writes them; train_isaaclab_reach passes (0.1, 0.001).
MIX = (1 - BETA1, 1 - BETA2)


@dataclass(frozen=True)
class Minibatches:
    """How to walk the data: epochs of shuffled minibatches under a cosine learning rate."""

    epochs: int
    batch: int
    lr: float


def no_progress(_epoch: int) -> None:
    return None


def fit(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray],
        forward: Callable[[np.ndarray], tuple[np.ndarray, list[np.ndarray]]],
        derivative: Callable[[np.ndarray], np.ndarray],
        x: np.ndarray, y: np.ndarray, w: np.ndarray, plan: Minibatches, rng: np.random.Generator,
        progress: Callable[[int], None] = no_progress, fixed: Sequence[np.ndarray] | None = None,
        mix: tuple[float, float] = MIX) -> float:
    """Fit an MLP (updated in place) to ``y`` with per-sample weights ``w``; the last epoch's mean loss.

    ``forward`` returns the output and each layer's input activation; ``derivative``
    gives the hidden activation's slope from its output; ``fixed`` masks (weights
    then biases) mark entries the fit must leave as they are.
    """
    params = [*weights, *biases]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t, loss, n = 0, math.nan, len(weights)
    for epoch in range(plan.epochs):
        progress(epoch)
        lr = plan.lr * (0.5 * (1 + math.cos(math.pi * epoch / plan.epochs)) * 0.9 + 0.1)
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), plan.batch):
            idx = order[start : start + plan.batch]
            out, acts = forward(x[idx])
            diff = (out - y[idx]) * w[idx, None]
            total += float(np.sum(diff * (out - y[idx])))
            grad = 2 * diff / len(idx)
            grads_w: list[np.ndarray] = [np.empty(0)] * n
            grads_b: list[np.ndarray] = [np.empty(0)] * n
            for i in reversed(range(n)):
                grads_w[i] = matmul(acts[i].T, grad)
                grads_b[i] = grad.sum(axis=0)
                if i > 0:
                    grad = matmul(grad, weights[i].T) * derivative(acts[i])
            t += 1
            grads = [*grads_w, *grads_b]
            if fixed is not None:
                grads = [np.where(f, np.float32(0.0), g) for f, g in zip(fixed, grads)]
            for p, g, mi, vi in zip(params, grads, m, v):
                mi *= BETA1
                mi += mix[0] * g
                vi *= BETA2
                vi += mix[1] * g * g
                p -= (lr * math.sqrt(1 - BETA2**t) / (1 - BETA1**t)) * mi / (np.sqrt(vi) + EPS)
        loss = total / len(x)
    return loss
