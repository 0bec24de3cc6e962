"""A sweep's summary: ``sweep.json`` (every cell, full error text) and
``report.html`` (success rates, distributions over seeds, the worst seeds
linking to their own run pages), both in the sweep's folder.

Built from the cells' ``report.json`` files only, so ``hil report SWEEP_DIR``
rebuilds it, and a cell that broke before writing one still has its row.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scenarios.html import badge, esc, figure, page, table
from scenarios.plots import draw_distribution, draw_pass_rates, new_figure, safe_id, to_svg

SWEEP_FILE = "sweep.json"
PAGE_FILE = "report.html"
SWEEP_FORMAT = 1
# Worse first: how the worst-seeds table orders outcomes.
OUTCOME_RANK = {"broken": 0, "fail": 1, "interrupted": 2, "pass": 3}
WORST_SHOWN = 10


@dataclass
class CellSummary:
    target: str
    seed: int
    folder: str  # relative to the sweep folder
    outcome: str
    exit_code: int | None
    wall_s: float
    error: str = ""  # full text
    failed: list[str] = field(default_factory=list)
    asserts: str = "-"

    def note(self) -> str:
        """What the table's last column says: the failed assertions, else the error's first line."""
        return ", ".join(self.failed) or (self.error.splitlines()[0] if self.error else "")


@dataclass
class SweepSummary:
    scenario: str
    targets: list[str]
    seeds: list[int]
    exit_code: int
    cells: list[CellSummary]

    def save(self, folder: Path) -> Path:
        path = folder / SWEEP_FILE
        path.write_text(json.dumps({"format": SWEEP_FORMAT, **asdict(self)}, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: Path) -> SweepSummary:
        data = json.loads((folder / SWEEP_FILE).read_text())
        if data.get("format") != SWEEP_FORMAT:
            raise ValueError(f"{folder / SWEEP_FILE}: format {data.get('format')!r}, expected {SWEEP_FORMAT}")
        cells = [CellSummary(**c) for c in data["cells"]]
        return cls(data["scenario"], list(data["targets"]), list(data["seeds"]), int(data["exit_code"]), cells)


def cell_summary(target: str, seed: int, folder: str, outcome: str, exit_code: int | None, wall_s: float,
                 report: dict[str, Any] | None) -> CellSummary:
    if report is None:
        return CellSummary(target, seed, folder, outcome, exit_code, wall_s, error="no report.json")
    verdicts = report.get("verdicts", [])
    failed = [v["name"] for v in verdicts if not v["passed"] and not v.get("skipped")]
    passed = sum(bool(v["passed"]) for v in verdicts)
    return CellSummary(target, seed, folder, outcome, exit_code, wall_s, error=report.get("error") or "",
                       failed=failed, asserts=f"{passed}/{len(verdicts)}")


def read_report(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- what the distributions show ------------------------------------------------------
def _goal_figures(reports: dict[tuple[str, int], dict[str, Any]]) -> tuple[dict[str, list[float]],
                                                                            dict[str, list[float]]]:
    """Per 'target goal': time to reach (s) and best distance as a share of the tolerance."""
    times: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for (target, _seed), report in sorted(reports.items()):
        for goal in report.get("goals", []):
            label = f"{target} {goal.get('id')}"
            times.setdefault(label, [])
            ratios.setdefault(label, [])
            if goal.get("reached") and goal.get("time_s") is not None:
                times[label].append(float(goal["time_s"]))
            best, tolerance = goal.get("best_error"), goal.get("tolerance")
            if best is not None and tolerance:
                ratios[label].append(100.0 * float(best) / float(tolerance))
    return times, ratios


def _latency_p99(reports: dict[tuple[str, int], dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for (target, _seed), report in sorted(reports.items()):
        p99 = (report.get("figures", {}).get("latency_ms") or {}).get("p99_ms")
        out.setdefault(target, [])
        if p99 is not None:
            out[target].append(float(p99))
    return out


def _worst_goal_ratio(report: dict[str, Any] | None) -> float:
    if not report:
        return math.inf
    ratios = [float(g["best_error"]) / float(g["tolerance"]) for g in report.get("goals", [])
              if g.get("best_error") is not None and g.get("tolerance")]
    return max(ratios, default=0.0)


def worst_cells(summary: SweepSummary, reports: dict[tuple[str, int], dict[str, Any]]) -> list[CellSummary]:
    """Worse outcome first, then more failed assertions, then the goal missed by the most."""
    def badness(cell: CellSummary) -> tuple[int, int, float]:
        return (OUTCOME_RANK.get(cell.outcome, 0), -len(cell.failed),
                -_worst_goal_ratio(reports.get((cell.target, cell.seed))))
    return sorted(summary.cells, key=badness)[:WORST_SHOWN]


# -- the page -------------------------------------------------------------------------------
def _link(cell: CellSummary, folder: Path) -> str:
    target = f"{cell.folder}/report.html"
    text = f"{cell.target} seed {cell.seed}"
    if (folder / cell.folder / "report.html").exists():
        return f'<a href="{esc(target)}">{esc(text)}</a>'
    return esc(text) + ' <span class="note">(no page)</span>'


def render_sweep_page(summary: SweepSummary, folder: Path) -> str:
    reports = {(c.target, c.seed): r for c in summary.cells if (r := read_report(folder / c.folder)) is not None}
    outcome = {0: "pass", 1: "fail", 130: "interrupted"}.get(summary.exit_code, "broken")
    title = f"sweep of {summary.scenario}: {len(summary.targets)} target(s) x {len(summary.seeds)} seed(s)"
    header = f"<h1>{esc(title)} {badge(outcome.upper(), outcome)}</h1>"
    salt = safe_id(f"sweep-{summary.scenario}")
    body = ["<h2>Success rates</h2>"]
    rates: dict[str, tuple[int, int]] = {}
    rows = []
    for target in summary.targets:
        cells = [c for c in summary.cells if c.target == target]
        counts = {k: sum(c.outcome == k for c in cells) for k in OUTCOME_RANK}
        rates[target] = (counts["pass"], len(cells))
        share = f"{100.0 * counts['pass'] / len(cells):.0f} %" if cells else "-"
        rows.append([target, str(len(cells)), str(counts["pass"]), str(counts["fail"]), str(counts["broken"]),
                     str(counts["interrupted"]), share])
    body.append(table(["target", "runs", "pass", "fail", "broken", "interrupted", "pass rate"], rows, "rates"))
    fig = new_figure(max(4.0, 1.6 * len(rates) + 2), 3.0)
    draw_pass_rates(fig.add_subplot(), rates)
    body.append(figure(to_svg(fig, f"{salt}-rates"), "Share of runs that passed, per target.", "plot-rates"))

    body.append("<h2>Distributions over seeds</h2>")
    times, ratios = _goal_figures(reports)
    for values, ylabel, title_text, bound, fig_id in (
            (times, "time to reach (s, sim)", "time to reach each goal (reached runs only)", None, "plot-times"),
            (ratios, "best distance (% of tolerance)", "closest approach to each goal; <= 100 % is within tolerance",
             100.0, "plot-errors"),
            (_latency_p99(reports), "loop latency p99 (ms)", "loop latency p99 per run", None, "plot-latency")):
        fig = new_figure(max(6.0, 0.9 * len(values) + 3), 3.4)
        drawn = draw_distribution(fig.add_subplot(), values, ylabel, title_text, bound)
        body.append(figure(to_svg(fig, f"{salt}-{fig_id}"), f"{title_text} ({drawn} values)", fig_id))

    body.append("<h2>Worst seeds</h2>")
    worst = worst_cells(summary, reports)
    rows = [[_link(c, folder), badge(c.outcome), esc(c.asserts),
             (esc(f"{_worst_goal_ratio(reports.get((c.target, c.seed))) * 100:.0f} %"), "num"),
             (esc(c.note()), "wrap")] for c in worst]
    body.append(table(["run", "outcome", "asserts", "worst goal (% of tolerance)", "failed / error"], rows, "worst",
                      raw=True))
    body.append("<h2>Every run</h2>")
    rows = [[_link(c, folder), badge(c.outcome), esc(c.asserts), (f"{c.wall_s:.1f}", "num"),
             (esc(", ".join(c.failed)), "wrap"), (esc(c.error), "wrap")] for c in summary.cells]
    body.append(table(["run", "outcome", "asserts", "wall s", "failed assertions", "error (full text)"], rows, "cells",
                      raw=True))
    return page(title, header, "".join(body))


def write_sweep_page(summary: SweepSummary, folder: Path) -> Path | None:
    """sweep.json and report.html; a page that cannot be written is a warning (the cells keep their own)."""
    try:
        summary.save(folder)
        path = folder / PAGE_FILE
        path.write_text(render_sweep_page(summary, folder))
    except OSError as exc:
        print(f"warning: cannot write the sweep summary in {folder}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return path
