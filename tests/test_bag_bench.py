"""hil bench bag runs end to end with tiny windows (figures are not judged here)."""

from __future__ import annotations

import pytest

from tests.bench_run import run_bench


@pytest.mark.slow
def test_bench_bag_prints_both_measurements_beside_their_baselines():
    out, _met, _missed = run_bench("bag", "--seconds", "0.5", "--rounds", "1", "--messages", "2000")
    assert "recorder CPU per message recorded" in out
    assert "without recorder (baseline)" in out and "with recorder" in out and "recording cost" in out
    assert "raw pyzmq PUB of prepared frames (floor)" in out and "hil bag replay --max" in out
    assert "2,000 received (target" in out  # the replay delivered the whole bag
