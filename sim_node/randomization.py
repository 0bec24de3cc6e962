"""Domain randomization: sampled from ranges and a seed, named by a hash.

The hash of the applied values is echoed in NodeInfo and in every JointState,
so a recorded run says exactly which physics produced it and can be replayed
with the same reset (seed and ranges give the same values again).
"""

from __future__ import annotations

import hashlib

import numpy as np

from schemas.services_pb2 import Randomization, RandomizationRanges
from sim_node.backend import nominal

# Scales never go below this, whatever the spread asks: a zero or negative
# mass, damping or gain is not a variation of the arm, it is a broken model.
MIN_SCALE = 0.05
# Largest ranges accepted: beyond them the "arm" is no longer this arm (and a
# huge latency would hold that many commands in memory).
MAX_SCALE_SPREAD = 1.0
MAX_NOISE_STD = 0.5  # rad
MAX_LATENCY_STEPS = 100


def check_ranges(ranges: RandomizationRanges) -> None:
    """Raise ValueError, saying which value and the accepted range, for ranges
    that are not finite or too wide to describe a variation of the arm."""
    for name in ("mass_scale", "damping_scale", "friction_scale", "actuator_gain_scale"):
        value = getattr(ranges, name)
        if not 0.0 <= value <= MAX_SCALE_SPREAD:  # also false for NaN
            raise ValueError(f"randomization {name} spread must be in [0, {MAX_SCALE_SPREAD}], got {value}")
    if not 0.0 <= ranges.obs_noise_std <= MAX_NOISE_STD:
        raise ValueError(f"randomization obs_noise_std must be in [0, {MAX_NOISE_STD}] rad, "
                         f"got {ranges.obs_noise_std}")
    if ranges.max_latency_steps > MAX_LATENCY_STEPS:
        raise ValueError(f"randomization max_latency_steps must be at most {MAX_LATENCY_STEPS}, "
                         f"got {ranges.max_latency_steps}")


def sample(ranges: RandomizationRanges | None, seed: int) -> Randomization:
    """Draw one Randomization; each scale uniform in [1 - spread, 1 + spread],
    noise std uniform in [0, spread], latency an integer in [0, max].
    Raises ValueError for ranges check_ranges refuses.

    Uses its own stream of the seed, so the physics noise drawn later from
    the same seed is independent of how many values were drawn here.
    """
    out = nominal()
    if ranges is None:
        return out
    check_ranges(ranges)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xD0A1]))

    def scale(spread: float) -> float:
        return max(MIN_SCALE, float(rng.uniform(1.0 - spread, 1.0 + spread)))

    out.mass_scale = scale(ranges.mass_scale)
    out.damping_scale = scale(ranges.damping_scale)
    out.friction_scale = scale(ranges.friction_scale)
    out.actuator_gain_scale = scale(ranges.actuator_gain_scale)
    out.obs_noise_std = float(rng.uniform(0.0, ranges.obs_noise_std))
    out.latency_steps = int(rng.integers(0, int(ranges.max_latency_steps) + 1))
    return out


def randomization_hash(applied: Randomization) -> str:
    """Short sha256 of the canonical (deterministic) serialization."""
    data = applied.SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()[:16]
