"""The closing line and exit status every ``hil bench`` shares."""

from __future__ import annotations

import math

import pytest

from tools.bench.targets import Targets


def test_all_met_exits_0() -> None:
    targets = Targets()
    assert targets.check("round trip", 1.2, 1.6)
    assert targets.check("steps/s", 3100, 3000, kind="min")
    assert targets.line() == "targets: 2 met, 0 missed"
    assert targets.exit_code() == 0


def test_a_miss_is_named_and_exits_1() -> None:
    targets = Targets()
    targets.check("round trip", 2.4, 1.6)
    targets.check("steps/s", 3100, 3000, kind="min")
    targets.check("CPU/step", math.nan, 150)  # not measured: missed
    assert targets.line() == "targets: 1 met, 2 missed (round trip, CPU/step)"
    assert targets.exit_code() == 1


def test_limits_are_inclusive_and_kind_is_checked() -> None:
    targets = Targets()
    assert targets.check("at most", 5.0, 5.0) and targets.check("at least", 5.0, 5.0, kind="min")
    with pytest.raises(ValueError):
        targets.check("x", 1, 2, kind="exact")  # type: ignore[arg-type]
