"""Small statistics for sweeps: a binomial confidence interval and order statistics.

The Wilson score interval is used for success rates because it stays inside
[0, 1] and keeps a sensible width at 0 or n successes out of n, where the
textbook normal interval collapses to a point (20/20 would "prove" 100 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def z_of(confidence: float) -> float:
    """Two-sided normal quantile: 1.96 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) for ``successes`` out of ``trials``; (0, 1) for no trials."""
    if trials <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in 0..{trials}, got {successes}")
    z = z_of(confidence)
    p = successes / trials
    z2n = z * z / trials
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / trials + z2n / (4.0 * trials)) / (1.0 + z2n)
    # At 0 or n successes the bound is exactly 0 or 1; rounding must not move it.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation between order statistics (NumPy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass(frozen=True)
class Spread:
    """Median, 90th percentile and the worst value of a figure, with the seed of the worst."""

    count: int
    median: float
    p90: float
    worst: float
    worst_seed: int | None

    def to_dict(self) -> dict[str, float | int | None]:
        def clean(x: float) -> float | None:
            return x if math.isfinite(x) else None
        return {"count": self.count, "median": clean(self.median), "p90": clean(self.p90),
                "worst": clean(self.worst), "worst_seed": self.worst_seed}


def spread(samples: Sequence[tuple[float, int]]) -> Spread:
    """``samples`` are (value, seed); larger is worse. Ties keep the lowest seed for the worst."""
    values = [v for v, _ in samples if math.isfinite(v)]
    if not values:
        return Spread(0, math.nan, math.nan, math.nan, None)
    worst_value, worst_seed = max(((v, s) for v, s in samples if math.isfinite(v)), key=lambda vs: (vs[0], -vs[1]))
    return Spread(len(values), quantile(values, 0.5), quantile(values, 0.9), worst_value, worst_seed)
