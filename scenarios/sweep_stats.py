"""What a sweep says about a policy: success rates with their intervals, spreads, failures by reason.

One run says little; a sweep over seeds (and randomizations) and targets says
how often the policy reaches each goal. ``SweepBook`` collects every finished
cell (one ``hil run`` of one target and seed), and after each one rewrites,
in the sweep's folder:

- ``summary.json``: per target and goal the success rate with its Wilson
  interval, the final error and the time to reach (median, p90, worst and
  the seed of the worst, so it can be re-run alone), failures grouped by
  reason, the ``success_rate`` gate, and one line per cell;
- ``junit.xml``: one test case per cell and goal, one ``run`` case per cell
  (its other assertions, or why it broke) and one case per gate check;

so a reader (or report.html) sees results while the sweep still runs.
``text()`` is the table printed at the end; nothing in it is cut short.
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.report import EXIT_BROKEN, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, OUTCOMES
from scenarios.schema import Scenario, SuccessRateCheck
from scenarios.stats import spread, wilson
from scenarios.wrap_table import wrapped_table

SUMMARY_FORMAT = 1
DEFAULT_CONFIDENCE = 0.95
ALL_GOALS = "(all goals)"


@dataclass
class CellRecord:
    """One finished cell: how its ``hil run`` ended and its report.json (None when it wrote none)."""

    target: str
    seed: int
    exit_code: int
    wall_s: float
    out: str
    report: dict[str, Any] | None = None
    error: str = ""  # why there is no report, or what the executor saw (a worker that died)
    where: str = ""  # the host or Ray node that ran it
    port: str = ""  # the arm's serial port (target hw)
    started_at: float = 0.0  # wall clock (epoch seconds) on the machine that ran it
    ended_at: float = 0.0

    @classmethod
    def from_folder(cls, target: str, seed: int, exit_code: int, wall_s: float, out: Path, **extra: Any) -> CellRecord:
        """Read ``out/report.json``; a missing or unreadable one makes the cell broken, saying why.

        ``extra``: error, where, port, started_at, ended_at (see the fields).
        """
        try:
            report = json.loads((out / "report.json").read_text())
        except (OSError, ValueError) as exc:
            reason = extra.pop("error", "") or f"no report.json in {out} ({getattr(exc, 'strerror', None) or exc})"
            code = exit_code if exit_code == EXIT_INTERRUPTED else EXIT_BROKEN
            return cls(target, seed, code, wall_s, str(out), None, reason, **extra)
        return cls(target, seed, exit_code, wall_s, str(out), report, **extra)

    @property
    def judged(self) -> bool:
        """The run went to its end (pass or fail) and said so: its goals count."""
        return self.report is not None and self.exit_code in (EXIT_PASS, EXIT_FAIL)

    @property
    def outcome(self) -> str:
        return OUTCOMES.get(self.exit_code, f"exit {self.exit_code}")

    def verdicts(self) -> list[dict[str, Any]]:
        return list((self.report or {}).get("verdicts", []))

    def run_error(self) -> str:
        """What the executor saw (a worker that died outranks what the orphaned run wrote), else the run's error."""
        return (self.error or (self.report or {}).get("error") or "").strip()

    def other_failures(self) -> list[str]:
        """What failed besides goals: assertions such as no_crash, or a run that ended early."""
        failed = [v["name"] for v in self.verdicts() if not v["passed"] and not v["name"].startswith("goal:")]
        if self.exit_code == EXIT_FAIL and self.run_error():
            failed.append("run: " + self.run_error().splitlines()[0])
        return failed


@dataclass
class GoalTally:
    target: str
    goal: str
    unit: str
    reached: int = 0
    runs: int = 0
    errors: list[tuple[float, int]] = field(default_factory=list)  # (final error, seed)
    times: list[tuple[float, int]] = field(default_factory=list)  # (time to reach, seed), reached only


def _goal_unit(kind: str) -> str:
    return "mm" if kind == "tcp" else "rad"


def _shown(kind: str, value: Any) -> float:
    """A report's goal error (m or rad) in the unit people read; NaN when absent."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return math.nan
    return float(value) * 1000.0 if kind == "tcp" else float(value)


_PATH = re.compile(r"(?<![\w.])/[^\s:;,'\")]+")
_DECIMAL = re.compile(r"\b\d+\.\d+\b")
_PID = re.compile(r"\bpid \d+")


def reason_key(text: str) -> str:
    """Group key of an error line: paths, pids and measured decimals vary from cell to cell."""
    line = text.strip().splitlines()[0] if text.strip() else "(no reason given)"
    return _DECIMAL.sub("N", _PID.sub("pid N", _PATH.sub("<path>", line)))


class SweepBook:
    """Every finished cell of one sweep, and what they add up to."""

    def __init__(self, scenario: Scenario, targets: list[str], seeds: list[int], out: Path, *,
                 executor: str = "local", confidence: float | None = None) -> None:
        self.scenario = scenario
        self.targets = targets
        self.seeds = seeds
        self.out = Path(out)
        self.executor = executor
        self.gate: SuccessRateCheck | None = scenario.assertions.success_rate
        default = self.gate.confidence if self.gate else DEFAULT_CONFIDENCE
        self.confidence = default if confidence is None else confidence
        self.records: list[CellRecord] = []
        self.interrupted = False
        self.setup_error = ""

    # -- collecting ----------------------------------------------------------------------
    def add(self, record: CellRecord, write: bool = True) -> None:
        """A cell finished: keep it and (by default) rewrite summary.json and junit.xml at once."""
        self.records.append(record)
        if write:
            self.write()

    def ordered(self) -> list[CellRecord]:
        order = {(t, s): i for i, (t, s) in enumerate((t, s) for t in self.targets for s in self.seeds)}
        return sorted(self.records, key=lambda r: order.get((r.target, r.seed), len(order)))

    @property
    def complete(self) -> bool:
        return len(self.records) == len(self.targets) * len(self.seeds)

    # -- figures -------------------------------------------------------------------------
    def goal_tallies(self) -> list[GoalTally]:
        """Per target, per goal of the scenario (in file order), over the judged cells."""
        tallies: dict[tuple[str, str], GoalTally] = {}
        for target in self.targets:
            for goal in self.scenario.goals:
                tallies[(target, goal.id)] = GoalTally(target, goal.id, _goal_unit(goal.kind))
        for record in self.ordered():
            if not record.judged:
                continue
            for goal in (record.report or {}).get("goals", []):
                tally = tallies.get((record.target, goal.get("id", "")))
                if tally is None:
                    continue
                tally.runs += 1
                kind = goal.get("kind", "tcp")
                error = _shown(kind, goal.get("error"))
                if not math.isfinite(error):
                    error = _shown(kind, goal.get("best_error"))
                if math.isfinite(error):
                    tally.errors.append((error, record.seed))
                if goal.get("reached"):
                    tally.reached += 1
                    time_s = goal.get("time_s")
                    if isinstance(time_s, (int, float)) and math.isfinite(time_s):
                        tally.times.append((float(time_s), record.seed))
        return list(tallies.values())

    def run_tallies(self) -> dict[str, tuple[int, int]]:
        """Per target: (runs in which every goal was reached, judged runs)."""
        out: dict[str, tuple[int, int]] = {t: (0, 0) for t in self.targets}
        for record in self.records:
            if not record.judged:
                continue
            goals = [v for v in record.verdicts() if v["name"].startswith("goal:")]
            ok, total = out[record.target]
            out[record.target] = (ok + int(all(v["passed"] for v in goals)), total + 1)
        return out

    def gate_checks(self) -> list[dict[str, Any]]:
        """One check per target and goal (per: goal) or per target (per: run); empty without a gate."""
        if self.gate is None:
            return []
        gate = self.gate
        checks = []
        if gate.per == "goal":
            items = [(t.target, t.goal, t.reached, t.runs) for t in self.goal_tallies()]
        else:
            items = [(target, ALL_GOALS, ok, n) for target, (ok, n) in self.run_tallies().items()]
        for target, goal, ok, n in items:
            low, high = wilson(ok, n, gate.confidence)
            checks.append({"target": target, "goal": goal, "successes": ok, "runs": n, "lower": low, "upper": high,
                           "min": gate.min, "passed": n > 0 and low >= gate.min})
        return checks

    def failures(self) -> list[dict[str, Any]]:
        """Failed goals, failed assertions and run errors, grouped; most frequent first."""
        groups: dict[str, dict[str, Any]] = {}

        def note(key: str, record: CellRecord, example: str) -> None:
            group = groups.setdefault(key, {"reason": key, "count": 0, "cells": [], "example": example})
            group["count"] += 1
            group["cells"].append({"target": record.target, "seed": record.seed})

        for record in self.ordered():
            if record.exit_code == EXIT_INTERRUPTED:
                continue
            if not record.judged:
                note(f"{record.outcome}: {reason_key(record.run_error())}", record, record.run_error())
                continue
            for verdict in record.verdicts():
                if not verdict["passed"]:
                    note(f"{verdict['name']} ({verdict['bound']})", record, verdict.get("detail", ""))
            if record.exit_code == EXIT_FAIL and record.run_error():
                note(f"run ended early: {reason_key(record.run_error())}", record, record.run_error())
        return sorted(groups.values(), key=lambda g: -g["count"])

    # -- the verdict of the sweep --------------------------------------------------------
    def exit_code(self) -> int:
        """130 interrupted; 2 any cell broken; then the gate (if any) and every non-goal assertion; else any fail."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.setup_error or any(not r.judged for r in self.records):
            return EXIT_BROKEN
        if self.gate is not None:
            if not self.complete or not all(c["passed"] for c in self.gate_checks()):
                return EXIT_FAIL
            return EXIT_FAIL if any(r.other_failures() for r in self.records) else EXIT_PASS
        return EXIT_FAIL if any(r.exit_code == EXIT_FAIL for r in self.records) else EXIT_PASS

    def summary(self) -> dict[str, Any]:
        done = self.complete or self.interrupted or bool(self.setup_error)
        code = self.exit_code() if done else None
        goals = []
        for tally in self.goal_tallies():
            low, high = wilson(tally.reached, tally.runs, self.confidence)
            goals.append({
                "target": tally.target, "goal": tally.goal, "unit": tally.unit, "runs": tally.runs,
                "reached": tally.reached, "rate": tally.reached / tally.runs if tally.runs else None,
                "interval": [low, high] if tally.runs else None,
                "final_error": spread(tally.errors).to_dict(), "time_to_reach_s": spread(tally.times).to_dict(),
            })
        runs = []
        for target, (ok, n) in self.run_tallies().items():
            low, high = wilson(ok, n, self.confidence)
            runs.append({"target": target, "runs": n, "all_goals_reached": ok, "rate": ok / n if n else None,
                         "interval": [low, high] if n else None})
        gate = None
        if self.gate is not None:
            checks = self.gate_checks()
            gate = {"min": self.gate.min, "confidence": self.gate.confidence, "per": self.gate.per,
                    "passed": self.complete and bool(checks) and all(c["passed"] for c in checks),
                    "checks": checks}
        return {
            "format": SUMMARY_FORMAT,
            "scenario": self.scenario.name,
            "scenario_path": str(self.scenario.path),
            "executor": self.executor,
            "targets": self.targets,
            "seeds": self.seeds,
            "cells_total": len(self.targets) * len(self.seeds),
            "cells_done": len(self.records),
            "complete": self.complete,
            "running": not done,
            "outcome": OUTCOMES.get(code, "running") if code is not None else "running",
            "exit_code": code,
            "error": self.setup_error,
            "confidence": self.confidence,
            "interval_method": "wilson",
            "goals": goals,
            "runs": runs,
            "gate": gate,
            "failures": self.failures(),
            "cells": [{"target": r.target, "seed": r.seed, "outcome": r.outcome, "exit_code": r.exit_code,
                       "wall_s": round(r.wall_s, 3), "out": r.out, "where": r.where, "port": r.port,
                       "started_at": r.started_at, "ended_at": r.ended_at,
                       "failed": [v["name"] for v in r.verdicts() if not v["passed"]],
                       "error": r.run_error()} for r in self.ordered()],
        }

    # -- writing -------------------------------------------------------------------------
    def write(self) -> tuple[Path, Path]:
        """summary.json and junit.xml, each replaced whole (a reader never sees half a file)."""
        self.out.mkdir(parents=True, exist_ok=True)
        summary_path = self.out / "summary.json"
        _replace(summary_path, json.dumps(_finite(self.summary()), indent=2, allow_nan=False) + "\n")
        junit_path = self.out / "junit.xml"
        _replace(junit_path, ET.tostring(self.junit(), encoding="unicode", xml_declaration=True) + "\n")
        return summary_path, junit_path

    def junit(self) -> ET.Element:
        name = self.scenario.name
        suites = ET.Element("testsuites", {"name": f"{name} sweep"})
        goal_ids = [g.id for g in self.scenario.goals]
        for target in self.targets:
            records = [r for r in self.ordered() if r.target == target]
            suite = ET.SubElement(suites, "testsuite", {"name": f"{name}[{target}]"})
            properties = ET.SubElement(suite, "properties")
            for key, value in (("executor", self.executor), ("seeds", _seed_text(self.seeds)),
                               ("scenario_sha256", self.scenario.sha256)):
                ET.SubElement(properties, "property", {"name": key, "value": value})
            for record in records:
                _cell_cases(suite, f"scenarios.{name}.{target}.seed{record.seed}", record, goal_ids)
            _count(suite)
        checks = self.gate_checks()
        if checks:
            suite = ET.SubElement(suites, "testsuite", {"name": f"{name}[success_rate]"})
            assert self.gate is not None
            for check in checks:
                case = ET.SubElement(suite, "testcase", {"classname": f"scenarios.{name}.success_rate",
                                                         "name": f"{check['target']}:{check['goal']}", "time": "0"})
                text = (f"{check['successes']}/{check['runs']} reached; {self.gate.confidence:.0%} Wilson lower "
                        f"bound {check['lower']:.4f} (needs >= {check['min']:g})")
                if not self.complete:
                    ET.SubElement(case, "skipped", {"message": "the sweep has not finished: " + text})
                elif check["passed"]:
                    ET.SubElement(case, "system-out").text = text
                else:
                    ET.SubElement(case, "failure", {"message": text}).text = text
            _count(suite)
        totals = {key: sum(int(s.get(key, "0")) for s in suites) for key in ("tests", "failures", "errors")}
        suites.attrib.update({k: str(v) for k, v in totals.items()})
        ET.indent(suites)
        return suites

    # -- for people ----------------------------------------------------------------------
    def text(self) -> str:
        """The tables printed at the end of a sweep: rates, spreads, the gate, failures; nothing cut."""
        data = self.summary()
        conf = f"{self.confidence:.0%}"
        parts = [f"{self.scenario.name}: {data['cells_done']} of {data['cells_total']} runs "
                 f"({', '.join(self.targets)} x {len(self.seeds)} seeds, executor {self.executor}); "
                 f"success rates with {conf} Wilson intervals"]
        if not self.records:  # nothing ran (a set-up problem, or Ctrl-C at once): no empty tables
            parts.append(f"error: {self.setup_error}" if self.setup_error else "no run finished")
            parts.append(f"summary: {self.out / 'summary.json'}, {self.out / 'junit.xml'}")
            return "\n\n".join(parts)
        rows = [[g["target"], g["goal"], f"{g['reached']}/{g['runs']}", *_rate(g)] for g in data["goals"]]
        rows += [[r["target"], ALL_GOALS, f"{r['all_goals_reached']}/{r['runs']}", *_rate(r)] for r in data["runs"]]
        parts.append(wrapped_table(rows, ["target", "goal", "reached", "rate", f"{conf} interval"], [None, 32]))
        rows = [[g["target"], g["goal"], g["unit"], *_figures(g["final_error"]), *_figures(g["time_to_reach_s"])]
                for g in data["goals"]]
        parts.append("final error (when judged) and time to reach (s, reached goals only): median, p90, worst "
                     "and the seed of the worst\n"
                     + wrapped_table(rows, ["target", "goal", "unit", "error p50", "p90", "worst", "seed",
                                            "time p50", "p90", "worst", "seed"], [None, 32]))
        gate = data["gate"]
        if gate is not None:
            missed = [c for c in gate["checks"] if not c["passed"]]
            head = (f"gate success_rate: {gate['confidence']:.0%} lower bound >= {gate['min']:g} per {gate['per']}: "
                    + ("PASS" if gate["passed"] else "FAIL"))
            lines = [f"  {c['target']} {c['goal']}: {c['successes']}/{c['runs']}, lower bound {c['lower']:.3f} "
                     f"< {c['min']:g}" for c in missed]
            if not self.complete:
                lines.append(f"  only {data['cells_done']} of {data['cells_total']} runs finished")
            parts.append("\n".join([head, *lines]))
        failures = data["failures"]
        if failures:
            rows = [[str(f["count"]), f["reason"], _where(f["cells"]), f["example"]] for f in failures]
            parts.append("failures by reason:\n" + wrapped_table(rows, ["runs", "reason", "target: seeds",
                                                                       "example"], [None, 40, 30, 48]))
        if self.setup_error:
            parts.append(f"error: {self.setup_error}")
        parts.append(f"summary: {self.out / 'summary.json'}, {self.out / 'junit.xml'}")
        return "\n\n".join(parts)


def _cell_cases(suite: ET.Element, classname: str, record: CellRecord, goal_ids: list[str]) -> None:
    """A case per goal of the cell, then its ``run`` case (other assertions, or why it broke)."""
    goals = {g.get("id"): g for g in (record.report or {}).get("goals", [])}
    verdicts = {v["name"]: v for v in record.verdicts()}
    for goal_id in goal_ids:
        goal = goals.get(goal_id, {})
        time_s = goal.get("time_s")
        case = ET.SubElement(suite, "testcase", {
            "classname": classname, "name": f"goal:{goal_id}",
            "time": f"{time_s:.3f}" if isinstance(time_s, (int, float)) and math.isfinite(time_s) else "0"})
        verdict = verdicts.get(f"goal:{goal_id}")
        if record.exit_code == EXIT_INTERRUPTED:
            ET.SubElement(case, "skipped", {"message": "the run was interrupted"})
        elif not record.judged or verdict is None:
            why = record.run_error() or "the run judged no goals"
            ET.SubElement(case, "error", {"message": why.splitlines()[0][:200]}).text = why
        else:
            text = f"{verdict.get('detail', '')} (bound {verdict['bound']})"
            if verdict["passed"]:
                ET.SubElement(case, "system-out").text = text
            else:
                ET.SubElement(case, "failure", {"message": text[:200]}).text = text
    case = ET.SubElement(suite, "testcase", {"classname": classname, "name": "run", "time": f"{record.wall_s:.3f}"})
    where = f" on {record.where}" if record.where else ""
    if record.exit_code == EXIT_INTERRUPTED:
        ET.SubElement(case, "skipped", {"message": "the run was interrupted"})
    elif not record.judged:
        why = record.run_error() or record.outcome
        ET.SubElement(case, "error", {"message": why.splitlines()[0][:200]}).text = f"{why}\n(out: {record.out}{where})"
    elif record.other_failures():
        text = "; ".join(record.other_failures())
        ET.SubElement(case, "failure", {"message": text[:200]}).text = f"{text}\n(out: {record.out}{where})"
    else:
        ET.SubElement(case, "system-out").text = f"{record.outcome}; out: {record.out}{where}"


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", str(sum(c.find("error") is not None for c in cases)))
    suite.set("skipped", str(sum(c.find("skipped") is not None for c in cases)))
    suite.set("time", f"{sum(float(c.get('time', '0')) for c in cases if c.get('name') == 'run'):.3f}")


def _replace(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _seed_text(seeds: list[int]) -> str:
    """0..99 for a run of seeds, else a comma list."""
    if seeds and seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}..{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def _rate(row: dict[str, Any]) -> list[str]:
    if not row["runs"]:
        return ["-", "-"]
    low, high = row["interval"]
    return [f"{row['rate']:.1%}", f"{low:.1%} .. {high:.1%}"]


def _figures(data: dict[str, Any]) -> list[str]:
    if not data["count"]:
        return ["-", "-", "-", "-"]
    return [f"{data['median']:.4g}", f"{data['p90']:.4g}", f"{data['worst']:.4g}", str(data["worst_seed"])]


def _where(cells: Iterable[dict[str, Any]]) -> str:
    by_target: dict[str, list[int]] = {}
    for cell in cells:
        by_target.setdefault(cell["target"], []).append(cell["seed"])
    return "; ".join(f"{t}: {', '.join(str(s) for s in seeds)}" for t, seeds in by_target.items())

