"""The outcome of one run, written three ways: report.json (everything, for
tools), junit.xml (one test case per assertion, so CI shows each one) and a
summary table for people.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bus.errors import EXIT_BROKEN, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS
from scenarios.assertions import Verdict
from scenarios.wrap_table import wrapped_table

REPORT_FORMAT = 1
OUTCOMES = {EXIT_PASS: "pass", EXIT_FAIL: "fail", EXIT_BROKEN: "broken", EXIT_INTERRUPTED: "interrupted"}


@dataclass
class Report:
    scenario: str
    scenario_path: str
    target: str
    mode: str
    seed: int
    out_dir: str
    exit_code: int = EXIT_BROKEN
    error: str = ""
    verdicts: list[Verdict] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return OUTCOMES.get(self.exit_code, "broken")

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdicts"] = [{**asdict(v), "figure": _finite(v.figure)} for v in self.verdicts]
        return {"format": REPORT_FORMAT, "outcome": self.outcome, "passed": self.passed, **_clean(data)}

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / "report.json"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        xml_path = out_dir / "junit.xml"
        ET.ElementTree(junit(self)).write(xml_path, encoding="utf-8", xml_declaration=True)
        return json_path, xml_path


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return _finite(value)


def junit(report: Report) -> ET.Element:
    """JUnit XML: a suite per run, a test case per assertion; set-up trouble is an error case."""
    suites = ET.Element("testsuites")
    failures = sum(not v.passed and not v.skipped for v in report.verdicts)
    errors = 1 if report.error else 0
    suite = ET.SubElement(suites, "testsuite", {
        "name": f"{report.scenario}[{report.target},seed={report.seed}]",
        "tests": str(len(report.verdicts) + errors),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(sum(v.skipped for v in report.verdicts)),
        "time": f"{report.timings.get('total_s', 0.0):.3f}",
    })
    properties = ET.SubElement(suite, "properties")
    for key, value in sorted(report.provenance.items()):
        ET.SubElement(properties, "property", {"name": key, "value": "" if value is None else str(value)})
    classname = f"scenarios.{report.scenario}.{report.target}"
    if report.error:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": "run", "time": "0"})
        ET.SubElement(case, "error", {"message": report.error.splitlines()[0][:200]}).text = report.error
    for verdict in report.verdicts:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": verdict.name, "time": "0"})
        text = f"{verdict.figure_text} (bound {verdict.bound}) {verdict.detail}".strip()
        if verdict.skipped:
            ET.SubElement(case, "skipped", {"message": verdict.detail[:200]}).text = verdict.detail
        elif verdict.passed:
            ET.SubElement(case, "system-out").text = text
        else:
            ET.SubElement(case, "failure", {"message": text[:200]}).text = text
    ET.indent(suites)
    return suites


def table(rows: list[list[str]], header: list[str], wrap: dict[int, int] | None = None) -> str:
    """A plain-text table. Columns in ``wrap`` (index -> width) are wrapped at word
    boundaries onto continuation lines: text is never cut, a word longer than
    the width stays whole (scenarios/wrap_table.py)."""
    return wrapped_table(rows, header, [(wrap or {}).get(i) for i in range(len(header))])


def summary(report: Report) -> str:
    """The table printed at the end of ``hil run``."""
    title = f"{report.scenario} on {report.target} ({report.mode}, seed {report.seed}): {report.outcome.upper()}"
    parts = [title]
    if report.verdicts:
        rows = [[v.name, v.figure_text, v.bound, v.result] for v in report.verdicts]
        parts.append(table(rows, ["assertion", "figure", "bound", "result"]))
    if report.error:
        parts.append(f"error: {report.error}")
    t = report.timings
    if "startup_s" in t:
        speed = f", {t['realtime_factor']:.1f}x real time" if t.get("realtime_factor") else ""
        parts.append(f"start-up {t['startup_s']:.2f} s, reset {t.get('reset_s', 0.0):.2f} s, "
                     f"run {t.get('run_s', 0.0):.2f} s wall / "
                     f"{t.get('sim_time_s', 0.0):.2f} s simulated{speed}, stop {t.get('stop_s', 0.0):.2f} s")
    parts.append(f"report: {report.out_dir}/report.html, report.json, junit.xml")
    return "\n".join(parts)
