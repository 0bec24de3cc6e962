"""Latency statistics: whole-run percentiles in constant memory plus a sliding window.

A long soak must not grow a node's memory, so the whole-run figures come from
a log-bucketed histogram (about 1 % relative resolution), and the recent ones
from a bounded window of raw samples.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50.0, 90.0, 95.0, 99.0)

_GROWTH = 1.01
_LOG_GROWTH = math.log(_GROWTH)
_MIN_S = 1e-7  # 100 ns: anything faster lands in the first bucket
_BUCKETS = int(math.log(1e3 / _MIN_S) / _LOG_GROWTH) + 2  # up to 1000 s
_LAST = _BUCKETS - 1


@dataclass(frozen=True)
class Summary:
    count: int
    mean_s: float
    max_s: float
    p50_s: float
    p90_s: float
    p95_s: float
    p99_s: float

    def as_dict(self, prefix: str = "", unit: str = "us") -> dict[str, float]:
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
        return {
            f"{prefix}count": float(self.count),
            f"{prefix}mean_{unit}": self.mean_s * scale,
            f"{prefix}max_{unit}": self.max_s * scale,
            f"{prefix}p50_{unit}": self.p50_s * scale,
            f"{prefix}p90_{unit}": self.p90_s * scale,
            f"{prefix}p95_{unit}": self.p95_s * scale,
            f"{prefix}p99_{unit}": self.p99_s * scale,
        }


EMPTY = Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)


class LatencyStats:
    def __init__(self, window: int = 1000) -> None:
        # A list, not a numpy array: a node adds a sample every step, and
        # incrementing a Python int in a list costs a fraction of a numpy
        # element's read-modify-write; ``total`` converts once per call.
        self._hist = [0] * _BUCKETS
        self._window: deque[float] = deque(maxlen=window)
        self.count = 0
        self._sum = 0.0
        self._max = 0.0

    def add(self, seconds: float) -> None:
        if not seconds > _MIN_S:  # NaN, negative, zero and the tiny: the first bucket, or not at all
            if not math.isfinite(seconds):
                return
            seconds = max(seconds, 0.0)
            index = 0
        elif seconds < math.inf:
            index = min(_LAST, int(math.log(seconds / _MIN_S) / _LOG_GROWTH) + 1)
        else:
            return
        self._hist[index] += 1
        self._window.append(seconds)
        self.count += 1
        self._sum += seconds
        if seconds > self._max:
            self._max = seconds

    def total(self) -> Summary:
        """Percentiles over every sample since the start (bucket upper bounds)."""
        if self.count == 0:
            return EMPTY
        cumulative = np.cumsum(np.array(self._hist, dtype=np.int64))
        values = []
        for p in PERCENTILES:
            index = int(np.searchsorted(cumulative, math.ceil(p / 100 * self.count)))
            upper = _MIN_S * _GROWTH**index
            values.append(min(upper, self._max))
        return Summary(self.count, self._sum / self.count, self._max, *values)

    def recent(self) -> Summary:
        """Exact percentiles over the sliding window."""
        if not self._window:
            return EMPTY
        data = np.fromiter(self._window, dtype=float, count=len(self._window))
        p50, p90, p95, p99 = np.percentile(data, PERCENTILES)
        return Summary(len(data), float(data.mean()), float(data.max()), p50, p90, p95, p99)


def summarize(samples: list[float] | np.ndarray) -> Summary:
    """Exact percentiles of a finished list of samples (benchmarks)."""
    data = np.asarray(samples, dtype=float)
    if data.size == 0:
        return EMPTY
    p50, p90, p95, p99 = np.percentile(data, PERCENTILES)
    return Summary(int(data.size), float(data.mean()), float(data.max()), p50, p90, p95, p99)
