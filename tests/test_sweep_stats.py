"""Sweep statistics: the Wilson interval, spreads, the success_rate gate, the tables and files.

The aggregation is a pure function of the cells' report.json contents, so it
is checked here on reports written in the runner's format; tests/test_sweep_gate.py
and tests/test_sweep_ray.py check it on real sweeps.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from scenarios.checker import ScenarioError
from scenarios.schema import SuccessRateCheck, load, loads
from scenarios.stats import quantile, spread, wilson, z_of
from scenarios.sweep_stats import CellRecord, SweepBook, reason_key
from scenarios.wrap_table import wrap_cell, wrapped_table

ROOT = Path(__file__).resolve().parent.parent

GATED = """\
name: gated
robot: {target: mock}
policy: {scripted: ik}
goals:
  - id: left
    tcp: [0.328, 0.179, 0.194]
    timeout_s: 4
  - id: home
    joints: {elbow: 1.5708}
    timeout_s: 4
assertions:
  success_rate: {min: 0.95, confidence: 0.95}
"""


# -- the interval ---------------------------------------------------------------------------
@pytest.mark.parametrize("k, n, low, high", [
    # Published Wilson score intervals (95 %): Newcombe (1998), Table I; Brown, Cai & DasGupta (2001).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_intervals(k: int, n: int, low: float, high: float) -> None:
    got = wilson(k, n, 0.95)
    assert got[0] == pytest.approx(low, abs=1e-4) and got[1] == pytest.approx(high, abs=1e-4)


def test_wilson_is_symmetric_and_widens_with_confidence() -> None:
    for k in range(0, 21):
        low, high = wilson(k, 20)
        mirror = wilson(20 - k, 20)
        assert low == pytest.approx(1 - mirror[1]) and high == pytest.approx(1 - mirror[0])
        assert 0.0 <= low <= k / 20 <= high <= 1.0
        wide = wilson(k, 20, 0.99)
        assert wide[0] <= low and wide[1] >= high
    assert z_of(0.95) == pytest.approx(1.959964, abs=1e-6)
    # 20 of 20 does not prove 95 %: the lower bound is 0.839; it takes 73 of 73.
    assert wilson(20, 20)[0] < 0.95 and wilson(72, 72)[0] < 0.95 <= wilson(73, 73)[0]
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        wilson(1, 2, 1.0)
    with pytest.raises(ValueError, match="successes must be in 0..2"):
        wilson(3, 2)


def test_spread_names_the_seed_of_the_worst() -> None:
    samples = [(0.5, 3), (2.0, 7), (1.0, 4), (2.0, 1), (math.nan, 9)]
    s = spread(samples)
    assert (s.count, s.median, s.worst, s.worst_seed) == (4, 1.5, 2.0, 1)  # a tie: the lower seed
    assert s.p90 == pytest.approx(quantile([0.5, 1.0, 2.0, 2.0], 0.9))
    assert quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == pytest.approx(9.1)  # NumPy's default method
    empty = spread([])
    assert empty.count == 0 and empty.worst_seed is None and empty.to_dict()["median"] is None


# -- tables: wrap, never cut ----------------------------------------------------------------
def test_a_long_error_wraps_between_words_and_loses_nothing() -> None:
    error = "target hw needs a serial port: --port /dev/ttyUSB0 (or robot.port in the scenario)"
    lines = wrap_cell(error, 20)
    assert " ".join(lines) == error and all(len(line) <= 20 for line in lines if " " in line)
    text = wrapped_table([["hw", "3", error]], ["target", "seed", "error"], [None, None, 20])
    words = [w for line in text.splitlines()[2:] for w in line.split()]
    assert words == ["hw", "3", *error.split()]
    # A word longer than its column widens the column instead of being cut.
    long = wrapped_table([["x", "/a/very/long/path/that/is/one/word"]], ["a", "b"], [None, 10])
    assert "/a/very/long/path/that/is/one/word" in long


# -- the scenario field -----------------------------------------------------------------------
def test_success_rate_is_read_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gated.yaml"
    path.write_text(GATED.replace("{min: 0.95, confidence: 0.95}", "{min: 0.9}"))
    assert load(path).assertions.success_rate == SuccessRateCheck(0.9, 0.95, "goal")
    assert load(ROOT / "scenarios" / "smoke.yaml").assertions.success_rate is None


def test_bad_success_rate_fields_name_file_line_and_field(tmp_path: Path) -> None:
    text = GATED.replace("{min: 0.95, confidence: 0.95}", "\n    confidence: 1\n    per: seed\n    mni: 0.9")
    with pytest.raises(ScenarioError) as info:
        loads(text, tmp_path / "bad.yaml")
    errors = info.value.errors
    assert f"{tmp_path / 'bad.yaml'}:13: assertions.success_rate.confidence: expected a number > 0 and < 1, got 1" \
        in errors
    assert f"{tmp_path / 'bad.yaml'}:14: assertions.success_rate.per: expected one of goal, run, got \"seed\"" in errors
    assert any(e.endswith("assertions.success_rate.mni: unknown field; did you mean 'min'?") and ":15:" in e
               for e in errors)
    assert any("assertions.success_rate: missing required field 'min'" in e for e in errors)
    with pytest.raises(ScenarioError, match=r"success_rate.min: expected a number >= 0 and <= 1, got 1.5"):
        loads(GATED.replace("min: 0.95", "min: 1.5"), tmp_path / "bad.yaml")


# -- the book ---------------------------------------------------------------------------------
def report(seed: int, reached: dict[str, bool], *, crash: bool = False, error: str = "") -> dict[str, Any]:
    """A report.json as the runner writes it (scenarios/report.py) for the GATED scenario."""
    goals = []
    verdicts = []
    for goal_id, kind, tol in (("left", "tcp", 0.01), ("home", "joints", 0.05)):
        ok = reached[goal_id]
        err = (0.004 if kind == "tcp" else 0.02) + seed * 1e-5 if ok else tol * 1.5 + seed * 1e-4
        goals.append({"id": goal_id, "kind": kind, "tolerance": tol, "timeout_s": 4.0, "reached": ok,
                      "time_s": 0.5 + seed * 0.01 if ok else None, "error": err if ok else None, "best_error": err})
        verdicts.append({"name": f"goal:{goal_id}", "passed": ok, "figure": err, "unit": "mm",
                         "bound": "<= 10 mm within 4 s", "detail": "reached" if ok else "not reached"})
    verdicts.append({"name": "no_crash:policy", "passed": not crash, "figure": None, "unit": "", "bound": "alive",
                     "detail": "exited during the run with status -9" if crash else "ok"})
    passed = all(v["passed"] for v in verdicts) and not error
    return {"format": 1, "outcome": "pass" if passed else "fail", "exit_code": 0 if passed else 1, "error": error,
            "seed": seed, "goals": goals, "verdicts": verdicts}


def book_of(tmp_path: Path, seeds: int, fail_left: set[int], **kw: Any) -> SweepBook:
    scenario = loads(GATED, tmp_path / "gated.yaml")
    book = SweepBook(scenario, ["mock"], list(range(seeds)), tmp_path / "sweep", **kw)
    for seed in range(seeds):
        data = report(seed, {"left": seed not in fail_left, "home": True})
        book.add(CellRecord("mock", seed, data["exit_code"], 2.0, str(tmp_path / f"c{seed}"), data), write=False)
    return book


def test_one_goal_in_ten_missed_fails_the_gate(tmp_path: Path) -> None:
    book = book_of(tmp_path, 20, {4, 13})
    summary = book.summary()
    left = next(g for g in summary["goals"] if g["goal"] == "left")
    assert (left["reached"], left["runs"], left["rate"]) == (18, 20, 0.9)
    assert left["interval"] == pytest.approx(list(wilson(18, 20)))
    assert left["final_error"]["worst_seed"] == 13  # the unreached ones are the worst, the larger seed worse here
    assert left["time_to_reach_s"]["count"] == 18
    gate = summary["gate"]
    assert gate["passed"] is False and {c["goal"]: c["passed"] for c in gate["checks"]} == {"left": False,
                                                                                             "home": False}
    assert book.exit_code() == 1
    failures = summary["failures"]
    assert failures[0]["count"] == 2 and failures[0]["reason"].startswith("goal:left")
    assert [c["seed"] for c in failures[0]["cells"]] == [4, 13]
    text = book.text()
    assert "left         18/20    90.0%   69.9% .. 97.2%" in text
    assert "gate success_rate: 95% lower bound >= 0.95 per goal: FAIL" in text
    assert "mock: 4, 13" in text


def test_enough_clean_runs_pass_the_gate_and_a_crash_still_fails(tmp_path: Path) -> None:
    book = book_of(tmp_path, 73, set())
    assert book.summary()["gate"]["passed"] is True and book.exit_code() == 0
    # A crash is not a goal statistic: it fails the sweep whatever the rate says.
    data = report(73, {"left": True, "home": True}, crash=True)
    book.seeds.append(73)
    book.add(CellRecord("mock", 73, 1, 2.0, "c73", data), write=False)
    assert book.summary()["gate"]["passed"] is True and book.exit_code() == 1


def test_broken_and_interrupted_cells_decide_before_the_gate(tmp_path: Path) -> None:
    book = book_of(tmp_path, 3, set())
    book.seeds.append(3)
    book.add(CellRecord.from_folder("mock", 3, 1, 0.5, tmp_path / "nowhere", error="worker died"), write=False)
    assert book.records[-1].exit_code == 2 and book.exit_code() == 2
    assert book.summary()["goals"][0]["runs"] == 3  # the broken cell is not counted as a miss
    book.interrupted = True
    assert book.exit_code() == 130


def test_files_are_rewritten_as_cells_finish(tmp_path: Path) -> None:
    book = book_of(tmp_path, 0, set())
    book.seeds = [0, 1]
    book.write()
    first = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert first["running"] is True and first["cells_done"] == 0 and first["exit_code"] is None
    for seed in (0, 1):
        data = report(seed, {"left": seed == 0, "home": True})
        book.add(CellRecord("mock", seed, data["exit_code"], 1.5, f"c{seed}", data))
        done = json.loads((tmp_path / "sweep" / "summary.json").read_text())
        assert done["cells_done"] == seed + 1
    assert done["complete"] and done["outcome"] == "fail" and done["exit_code"] == 1
    suites = ET.parse(tmp_path / "sweep" / "junit.xml").getroot()
    cases = [(c.get("classname"), c.get("name")) for s in suites for c in s.findall("testcase")]
    # One case per cell and goal, one run case per cell, one case per gate check.
    assert ("scenarios.gated.mock.seed1", "goal:left") in cases and len(cases) == 2 * 2 + 2 + 2
    assert int(suites.get("failures", "0")) == 1 + 2  # seed 1's left goal, and both gate checks
    left_seed1 = next(c for s in suites for c in s.findall("testcase")
                      if c.get("classname") == "scenarios.gated.mock.seed1" and c.get("name") == "goal:left")
    assert left_seed1.find("failure") is not None


def test_reasons_group_across_paths_and_measured_numbers() -> None:
    a = reason_key("robot did not answer ping within 30 s; end of /tmp/x/robot.log:\n  boom")
    b = reason_key("robot did not answer ping within 30 s; end of /tmp/y/robot.log:\n  bang")
    assert a == b == "robot did not answer ping within 30 s; end of <path>:"
    assert reason_key("silent for 5.2 s (pid 123)") == reason_key("silent for 7.9 s (pid 456)")
