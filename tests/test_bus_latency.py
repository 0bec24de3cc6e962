from __future__ import annotations

import numpy as np

from bus.latency import LatencyStats, summarize


def test_whole_run_percentiles_are_within_the_bucket_resolution() -> None:
    rng = np.random.default_rng(1)
    samples = rng.lognormal(mean=np.log(200e-6), sigma=0.5, size=20_000)
    stats = LatencyStats(window=500)
    for s in samples:
        stats.add(float(s))
    total, exact = stats.total(), summarize(samples)
    for got, want in [(total.p50_s, exact.p50_s), (total.p95_s, exact.p95_s), (total.p99_s, exact.p99_s)]:
        assert abs(got - want) / want < 0.02
    assert total.count == 20_000 and total.max_s == samples.max()


def test_window_only_sees_recent_samples() -> None:
    stats = LatencyStats(window=100)
    for _ in range(1000):
        stats.add(1.0)
    for _ in range(100):
        stats.add(0.001)
    assert stats.recent().p99_s == 0.001
    assert stats.total().p50_s > 0.9


def test_non_finite_samples_are_ignored_and_empty_is_nan() -> None:
    stats = LatencyStats()
    assert np.isnan(stats.total().p50_s) and np.isnan(stats.recent().p50_s)
    stats.add(float("nan"))
    assert stats.count == 0
