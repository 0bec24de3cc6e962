"""report.json, junit.xml and the summary table; sweep arguments."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scenarios.assertions import Verdict
from scenarios.report import EXIT_BROKEN, EXIT_FAIL, Report, summary
from scenarios.sweep import SweepError, parse_seeds, parse_targets


def a_report(tmp_path: Path, **changes: object) -> Report:
    report = Report("reach", "scenarios/reach.yaml", "mujoco", "lockstep", 3, str(tmp_path), exit_code=EXIT_FAIL,
                    verdicts=[Verdict("goal:a", True, 1.5, "mm", "<= 10 mm within 4 s", "reached after 0.7 s"),
                              Verdict("loop_latency", False, math.nan, "ms", "p99 <= 20 ms", "no command <&>")],
                    timings={"startup_s": 1.2, "reset_s": 0.1, "run_s": 0.5, "sim_time_s": 3.0,
                             "realtime_factor": 6.0, "stop_s": 0.3, "total_s": 2.1},
                    provenance={"git_commit": None, "seed": 3, "randomization_hash": "ab12"},
                    figures={"latency_ms": {"p99_ms": math.inf}})
    for key, value in changes.items():
        setattr(report, key, value)
    return report


def test_json_has_no_nan_and_says_the_outcome(tmp_path: Path) -> None:
    json_path, _ = a_report(tmp_path).write(tmp_path)
    data = json.loads(json_path.read_text())  # strict: NaN/inf were written as null
    assert data["outcome"] == "fail" and data["passed"] is False and data["format"] == 1
    assert data["verdicts"][1]["figure"] is None and data["figures"]["latency_ms"]["p99_ms"] is None
    assert data["provenance"] == {"git_commit": None, "seed": 3, "randomization_hash": "ab12"}


def test_junit_has_a_case_per_verdict_and_escapes_text(tmp_path: Path) -> None:
    _, xml_path = a_report(tmp_path).write(tmp_path)
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "reach[mujoco,seed=3]"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["goal:a"].find("failure") is None
    failure = cases["loop_latency"].find("failure")
    assert failure is not None and "no command <&>" in (failure.text or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"git_commit": "", "seed": "3", "randomization_hash": "ab12"}


def test_a_broken_run_is_an_error_case(tmp_path: Path) -> None:
    report = a_report(tmp_path, verdicts=[], exit_code=EXIT_BROKEN,
                      error="robot exited with status 1 before it was ready; end of robot.log:\n    boom")
    _, xml_path = report.write(tmp_path)
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("errors")) == ("1", "1")
    error = suite.find("testcase/error")
    assert error is not None and error.get("message") == "robot exited with status 1 before it was ready; end of robot.log:"
    assert "boom" in (error.text or "")
    assert "error: robot exited" in summary(report) and "BROKEN" in summary(report)


def test_summary_table_lists_each_assertion(tmp_path: Path) -> None:
    text = summary(a_report(tmp_path))
    lines = text.splitlines()
    assert lines[0] == "reach on mujoco (lockstep, seed 3): FAIL"
    assert lines[1].split() == ["assertion", "figure", "bound", "result"]
    assert any(line.startswith("goal:a") and line.rstrip().endswith("pass") and "1.5 mm" in line for line in lines)
    assert any(line.startswith("loop_latency") and line.rstrip().endswith("FAIL") for line in lines)
    assert "6.0x real time" in text


@pytest.mark.parametrize("text, seeds", [("0..3", [0, 1, 2, 3]), ("7", [7]), ("0..1,5,1", [0, 1, 5])])
def test_seed_ranges(text: str, seeds: list[int]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["3..1", "a..b", "-1", "1,,x", ""])
def test_bad_seed_ranges_are_refused(text: str) -> None:
    with pytest.raises(SweepError, match="--seeds"):
        parse_seeds(text)


def test_targets() -> None:
    assert parse_targets("mock,mujoco,mock") == ["mock", "mujoco"]
    with pytest.raises(SweepError, match="unknown gazebo"):
        parse_targets("mock,gazebo")


# -- honest tables ---------------------------------------------------------------------------
def test_goals_an_interrupted_run_never_started_are_not_run_not_inf_fail(tmp_path: Path) -> None:
    from roarm.joints import NAMES, pose
    from scenarios.assertions import goal_verdict
    from scenarios.goals import GoalSequence
    from scenarios.schema import GoalSpec
    from scenarios.trace_recorder import TraceRecorder
    from schemas import messages_pb2

    goals = GoalSequence(tuple(GoalSpec(id=name, kind="tcp", target=(0.3, 0.0, 0.2), tolerance=0.01, timeout_s=4.0)
                               for name in ("first", "second", "third")))
    recorder = TraceRecorder()
    goals.start(0.0)
    q = pose("home")
    for k in range(3):
        state = messages_pb2.JointState(seq=k, names=NAMES, position=q, sim_time=0.01 * k, tcp=[0.1, 0.0, 0.3])
        recorder.state(0.01 * k, state, q, goals)
        goals.observe(state, q)
    goals.abandon("interrupted (SIGINT)")
    verdicts = [goal_verdict(g) for g in goals.results]
    assert [v.result for v in verdicts] == ["FAIL", "not run", "not run"]
    assert verdicts[0].figure_text.endswith("mm") and math.isfinite(verdicts[0].figure or math.nan)
    assert verdicts[1].figure is None and verdicts[1].detail == "not run: interrupted (SIGINT)"
    report = a_report(tmp_path, verdicts=verdicts, exit_code=130, error="interrupted (SIGINT)")
    text = summary(report)
    assert "inf" not in text
    rows = [line.rstrip() for line in text.splitlines() if line.startswith("goal:")]
    assert rows[0].endswith("FAIL") and rows[1].endswith("not run") and rows[2].endswith("not run")
    assert rows[1].split()[1] == "-"  # no figure for a goal that never ran
    _, xml_path = report.write(tmp_path)
    suite = ET.parse(xml_path).getroot().find("testsuite")
    assert suite is not None and (suite.get("failures"), suite.get("skipped")) == ("1", "2")
    assert suite.find("testcase[@name='goal:second']/skipped") is not None
    trace = recorder.finish(goals.results)
    assert [g.status for g in trace.goals] == ["cut short", "not run", "not run"]


def test_the_sweep_table_wraps_long_messages_at_word_boundaries() -> None:
    from scenarios.report import table

    message = ("robot exited with status 1 before it answered ping; the serial port /dev/serial/by-id/"
               "usb-1a86_USB_Serial-if00-port0 could not be opened: permission denied")
    text = table([["mock", "0", "broken", message]], ["target", "seed", "outcome", "failed / error"], wrap={3: 40})
    lines = text.splitlines()
    assert len(lines) > 3  # continuation lines
    column = lines[2].index("robot")
    pieces = [line[column:].strip() for line in lines[2:]]
    assert " ".join(pieces) == message  # every word, in order, none cut
    assert all(len(p) <= 40 or " " not in p for p in pieces)


def test_a_sweep_row_points_to_the_full_text_of_a_long_error() -> None:
    from scenarios.sweep import _row
    from scenarios.sweep_page import CellSummary

    cell = CellSummary("mock", 3, "mock-seed3", "broken", 2, 1.5, error="robot exited\nend of robot.log:\n  boom")
    assert _row(cell)[-1] == "robot exited (full text: mock-seed3/report.html)"
    failed = CellSummary("mock", 4, "mock-seed4", "fail", 1, 2.0, error="", failed=["goal:a", "loop_latency"])
    assert _row(failed)[-1] == "goal:a, loop_latency"
