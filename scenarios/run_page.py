"""``report.html`` of one run: the verdict table and the plots, one file.

Built from ``report.json``'s content plus the run's ``Trace`` (the runner's
own, saved as ``trace.json`` beside it, or a bag read back), so ``hil report
RUN_DIR`` rebuilds exactly what the runner wrote. Camera thumbnails appear
when the trace has any (``Trace.thumbnails``; filled once runs have cameras).
"""

from __future__ import annotations

import base64
import math
import sys
from pathlib import Path
from typing import Any

from scenarios.html import badge, definitions, esc, figure, page, table
from scenarios.plots import (draw_events, draw_goal_distances, draw_joints, draw_latency, goal_kinds, joint_groups,
                             panel_figure, safe_id, to_svg)
from scenarios.trace import TRACE_FILE, Trace

PAGE_FILE = "report.html"


def verdict_rows(report: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for v in report.get("verdicts", []):
        figure_text = "-" if v.get("figure") is None else f"{v['figure']:.4g} {v.get('unit', '')}".strip()
        result = verdict_result(v)
        rows.append([esc(v["name"]), (esc(figure_text), "num"), esc(v.get("bound", "")),
                     f'<span class="result {result.replace(" ", "-").lower()}">{esc(result)}</span>',
                     (esc(v.get("detail", "")), "wrap")])
    return rows


def verdict_result(verdict: dict[str, Any]) -> str:
    if verdict.get("skipped"):
        return "not run"
    return "pass" if verdict.get("passed") else "FAIL"


def _goal_rows(report: dict[str, Any], trace: Trace | None) -> list[list[Any]]:
    spans = {g.index: g for g in trace.goals} if trace else {}
    rows = []
    for i, goal in enumerate(report.get("goals", [])):
        scale = 1000.0 if goal.get("kind") == "tcp" else 1.0
        unit = goal.get("unit", "mm" if goal.get("kind") == "tcp" else "rad")
        span = spans.get(i)
        status = span.status if span else ("reached" if goal.get("reached") else "missed")
        best = goal.get("best_error")
        rows.append([
            esc(goal.get("id")), esc(goal.get("kind")), badge(status),
            (esc(f"{goal['time_s']:.3f} s") if goal.get("time_s") is not None else "-", "num"),
            (esc(f"{best * scale:.4g} {unit}") if best is not None else "-", "num"),
            (esc(f"{goal.get('tolerance', 0) * scale:g} {unit} / {goal.get('timeout_s', 0):g} s"), "num"),
            (esc(goal.get("note", "")), "wrap"),
        ])
    return rows


def _plots(trace: Trace, salt: str) -> list[str]:
    """Each panel as a <figure> with inline SVG."""
    out = []
    for kind in goal_kinds(trace):
        fig = panel_figure(11, 4.2)
        lines = draw_goal_distances(fig.add_subplot(), trace, kind)
        out.append(figure(to_svg(fig, f"{salt}-goal-{kind}"),
                          f"Distance to each {'Cartesian' if kind == 'tcp' else 'joint'} goal ({lines} goals) over the "
                          "seconds since it started, on the robot's clock; shaded: within tolerance.",
                          f"plot-goals-{kind}"))
    moved, flat = joint_groups(trace)
    if moved or flat:
        rows = len(moved) + (1 if flat else 0)
        fig = panel_figure(11, 1.9 * rows + 0.6, rows)
        draw_joints(fig, trace)
        names = trace.joint_names
        out.append(figure(to_svg(fig, f"{salt}-joints"),
                          f"Commanded (dashed) vs measured (solid) per joint; moved: "
                          f"{', '.join(names[j] for j in moved) or 'none'}; did not move: "
                          f"{', '.join(names[j] for j in flat) or 'none'}. Grey lines: goal starts.", "plot-joints"))
    fig = panel_figure(11, 3.2)
    draw_latency(fig.add_subplot(), trace)
    out.append(figure(to_svg(fig, f"{salt}-latency"), "State -> command loop latency (host monotonic clock).",
                      "plot-latency"))
    fig = panel_figure(11, 1.2 + 0.35 * max(1, len({e.node for e in trace.events})))
    draw_events(fig.add_subplot(), trace)
    out.append(figure(to_svg(fig, f"{salt}-events"), "Node events on the robot's clock.", "plot-events"))
    return out


def camera_section(trace: Trace) -> str:
    """Thumbnails of camera frames, when the run had cameras; empty otherwise."""
    if not trace.thumbnails:
        return ""
    items = []
    for th in trace.thumbnails:
        data = base64.b64encode(th.data).decode("ascii")
        items.append(f'<figure><img alt="{esc(th.camera)} at {th.t:.2f} s" src="data:{esc(th.mime)};base64,{data}">'
                     f"<figcaption>{esc(th.camera)} t={th.t:.2f} s</figcaption></figure>")
    return f'<h2>Cameras</h2><section id="cameras" class="thumbs">{"".join(items)}</section>'


def render_run_page(report: dict[str, Any], trace: Trace | None) -> str:
    outcome = str(report.get("outcome", "broken"))
    title = f"{report.get('scenario')} on {report.get('target')} ({report.get('mode')}, seed {report.get('seed')})"
    header = f"<h1>{esc(title)} {badge(outcome.upper(), outcome)}</h1>" + (
        f'<div class="note">{esc(report.get("scenario_path", ""))} &middot; {esc(report.get("out_dir", ""))}</div>')
    body = []
    if report.get("error"):
        body.append(f'<h2>Error</h2><pre id="error">{esc(report["error"])}</pre>')
    body.append("<h2>Verdicts</h2>")
    rows = verdict_rows(report)
    body.append(table(["assertion", "figure", "bound", "result", "detail"], rows, "verdicts", raw=True) if rows
                else '<p class="note" id="verdicts">no verdicts (the run broke before it could be judged)</p>')
    goal_rows = _goal_rows(report, trace)
    if goal_rows:
        body.append("<h2>Goals</h2>")
        body.append(table(["goal", "kind", "outcome", "time to reach", "best distance", "bound", "note"], goal_rows,
                          "goals", raw=True))
    body.append("<h2>Plots</h2>")
    if trace is not None and len(trace):
        thinned = f" (every {trace.stride}th state kept)" if trace.stride > 1 else ""
        body.append(f'<p class="note">{len(trace)} states{thinned}, source: {esc(trace.source)}; '
                    "time axis: the robot's own clock (sim_time), summed over episodes.</p>")
        body.extend(_plots(trace, safe_id(f"{report.get('scenario')}-{report.get('target')}-{report.get('seed')}")))
        body.append(camera_section(trace))
    else:
        body.append('<p class="note" id="no-plots">no joint states were seen: nothing to plot</p>')
    body.append(_facts(report))
    return page(title, header, "".join(body))


def _facts(report: dict[str, Any]) -> str:
    parts = []
    timings = report.get("timings", {})
    if timings:
        parts.append("<h2>Timings</h2>" + definitions(((k, _fmt(v)) for k, v in timings.items()), "timings"))
    figures = {k: v for k, v in report.get("figures", {}).items() if not isinstance(v, dict)}
    latency = report.get("figures", {}).get("latency_ms") or {}
    if figures or latency:
        items = [*figures.items(), *((f"latency {k}", _fmt(v)) for k, v in latency.items())]
        parts.append("<h2>Figures</h2>" + definitions(items, "figures"))
    if report.get("events"):
        parts.append("<h2>Warnings and errors</h2><pre id=\"events\">" + esc("\n".join(report["events"])) + "</pre>")
    nodes = report.get("nodes", {})
    if nodes:
        rows = [[esc(name), esc(node.get("pid")), esc(node.get("exit_code")), esc(node.get("stopped_by")),
                 f'<a href="{esc(Path(str(node.get("log", ""))).name)}">{esc(Path(str(node.get("log", ""))).name)}</a>',
                 (esc(" ".join(node.get("argv", []))), "wrap")] for name, node in nodes.items()]
        parts.append("<h2>Nodes</h2>" + table(["node", "pid", "exit", "stopped by", "log", "command"], rows, "nodes",
                                              raw=True))
    provenance = report.get("provenance", {})
    if provenance:
        parts.append("<h2>Provenance</h2>" + definitions(sorted(provenance.items()), "provenance"))
    files = ["report.json", "junit.xml", TRACE_FILE, "run.mcap"]
    links = " &middot; ".join(f'<a href="{f}">{f}</a>' for f in files)
    parts.append(f'<h2>Files</h2><p class="note">{links} (beside this page, where the run wrote them)</p>')
    return "".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "-"
    return "-" if value is None else str(value)


def write_run_page(report: dict[str, Any], trace: Trace | None, out_dir: Path, save_trace: bool = True) -> Path | None:
    """Save the trace and write report.html; a page that cannot be written is a
    warning, never a lost run (report.json and junit.xml are already there)."""
    try:
        if trace is not None and save_trace:
            trace.save(out_dir / TRACE_FILE)
        path = out_dir / PAGE_FILE
        path.write_text(render_run_page(report, trace))
    except OSError as exc:
        print(f"warning: cannot write {out_dir / PAGE_FILE}: {exc.strerror or exc}", file=sys.stderr)
        return None
    return path
