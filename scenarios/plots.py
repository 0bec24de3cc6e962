"""The pictures of a run, drawn from a ``Trace``: shared by ``report.html`` (one
SVG per panel) and ``hil bag plot`` (all panels in one PNG).

What makes them readable, and why:
- the x axis is the robot's clock (``sim_time``), so a lockstep run is drawn
  as the seconds the arm lived, not the wall-clock instant it took to compute;
- distances to a TCP goal are in mm on a log scale with the tolerance band
  shaded, so a 10 mm bound is visible next to a 300 mm start;
- one line per goal (a goal re-sent every 0.25 s is still one goal), its
  reach moment marked;
- joints that never moved share one panel drawn flat on a fixed span, instead
  of an autoscale that blows 1e-32 noise up to full height.

matplotlib's object API only (``Figure``, no pyplot): no global state, no
display needed.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bus.errors import Failed
from scenarios.trace import CUT_SHORT, MISSED, NOT_RUN, REACHED, GoalSpan, Trace

# A joint whose measured and commanded positions span less than this (rad) did not move
# (well above observation noise: 0.5 mrad std spans a few mrad over a run).
MOVED_RAD = 0.01
# The span (rad, each side) a joint that did not move is drawn on.
FLAT_SPAN_RAD = 0.1
# Points per line in an SVG: more only makes the page heavy, not the picture better.
MAX_POINTS = 2000
# Log-scale floor for distances (shown units), so an exact hit still has a place.
FLOOR = {"mm": 1e-2, "rad": 1e-4}
STATUS_COLOR = {REACHED: "#1a7f37", MISSED: "#cf222e", CUT_SHORT: "#bc4c00", NOT_RUN: "#6e7781"}
SEVERITY_COLOR = {"DEBUG": "#8c959f", "INFO": "#0969da", "WARNING": "#bf8700", "ERROR": "#cf222e",
                  "CRITICAL": "#82071e"}
CLOCK_LABEL = "robot clock (s, sim_time)"
# A panel title at a fixed height: left to itself matplotlib measures every tick label at
# draw time to lift the title over a top axis these panels never have.
TITLE = {"fontsize": 9, "y": 1.0}


class PlotError(Failed, ValueError):
    """Nothing to draw."""


# A run page panel's margins in inches: left (tick labels and y label), right, top (title),
# bottom (x label), and between stacked panels.
PANEL_MARGINS_IN = (0.95, 0.25, 0.35, 0.6, 0.55)


def new_figure(width: float, height: float) -> Figure:
    """A figure laid out by matplotlib's constrained layout: for pictures drawn once (a bag's
    overview, a sweep's page) whose labels vary too much for fixed margins."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def panel_figure(width: float, height: float, rows: int = 1) -> Figure:
    """A run page panel with fixed margins in inches.

    Every run (every cell of a sweep) draws these, and constrained layout measured every
    label twice: 1.6 s of the page's 2.7 s of CPU on this project's 2-core machine. The
    panels' labels are short and alike, so margins fixed in inches fit them all.
    """
    fig = Figure(figsize=(width, height), dpi=100)
    left, right, top, bottom, between = PANEL_MARGINS_IN
    panel_height = max(height - top - bottom - between * (rows - 1), 0.1) / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height,
                        bottom=bottom / height, hspace=between / panel_height)
    return fig


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an inline ``<svg>`` element: text kept as text (searchable, small),
    ids salted per figure so several SVGs in one page never share an id."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def to_png(fig: Figure, dpi: int = 90) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _thin(*columns: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, ...]:
    step = max(1, math.ceil(len(columns[0]) / limit))
    return tuple(c[::step] for c in columns)


def _column(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def goal_colors(goals: Sequence[GoalSpan]) -> dict[int, str]:
    palette = [f"C{i}" for i in range(10)]
    return {g.index: palette[i % len(palette)] for i, g in enumerate(goals)}


# -- distance to each goal ------------------------------------------------------
def goal_kinds(trace: Trace) -> list[str]:
    """The goal kinds that have at least one judged distance (tcp first)."""
    index = np.asarray(trace.goal_index, dtype=int)
    distance = _column(trace.distance)
    kinds = []
    for kind in ("tcp", "joints"):
        ids = [g.index for g in trace.goals if g.kind == kind]
        if ids and np.isfinite(distance[np.isin(index, ids)]).any():
            kinds.append(kind)
    return kinds


def draw_goal_distances(ax: Axes, trace: Trace, kind: str) -> int:
    """Distance to each goal of ``kind`` over the seconds since it started; returns the lines drawn."""
    goals = [g for g in trace.goals if g.kind == kind]
    unit = "mm" if kind == "tcp" else "rad"
    scale = 1000.0 if kind == "tcp" else 1.0
    floor = FLOOR[unit]
    colors = goal_colors(trace.goals)
    index = np.asarray(trace.goal_index, dtype=int)
    elapsed = _column(trace.goal_elapsed)
    distance = _column(trace.distance) * scale
    lines = 0
    tolerances = sorted({g.tolerance * scale for g in goals})
    if len(tolerances) == 1:
        ax.axhspan(floor, tolerances[0], color="#1a7f37", alpha=0.12, lw=0,
                   label=f"tolerance <= {tolerances[0]:g} {unit}", gid="tolerance-band")
        ax.axhline(tolerances[0], color="#1a7f37", lw=0.8, gid="tolerance-edge")
    for goal in goals:
        mask = (index == goal.index) & np.isfinite(distance)
        if not mask.any():
            continue
        x, y = _thin(elapsed[mask], np.maximum(distance[mask], floor))
        color = colors[goal.index]
        ax.plot(x, y, color=color, lw=1.4, label=_goal_label(goal), gid=f"goal-line-{goal.index}")
        lines += 1
        if len(tolerances) > 1:
            ax.axhline(goal.tolerance * scale, color=color, lw=0.8, ls="--")
        if goal.reached_after_s is not None:
            at = float(np.interp(goal.reached_after_s, x, y)) if len(x) > 1 else float(y[0])
            ax.axvline(goal.reached_after_s, color=color, lw=0.8, ls=":")
            ax.plot([goal.reached_after_s], [at], marker="o", ms=6, color=color, mec="black", mew=0.6,
                    gid=f"goal-reached-{goal.index}")
        if goal.timeout_s > 0:
            ax.axvline(goal.timeout_s, color="#6e7781", lw=0.6, ls="--", alpha=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("s since the goal started (robot clock, sim_time)")
    ax.set_ylabel(f"distance to goal ({unit}, log)")
    what = "TCP to Cartesian goal" if kind == "tcp" else "largest joint error to joint goal"
    ax.set_title(f"{what}: one line per goal, dot = reached (held), dashed = timeout", **TITLE)
    ax.grid(alpha=0.3, which="both", lw=0.4)
    if lines:
        ax.legend(loc="upper right", fontsize=7)
    return lines


def _goal_label(goal: GoalSpan) -> str:
    if goal.status == REACHED and goal.reached_after_s is not None:
        return f"{goal.id}: reached {goal.reached_after_s:.2f} s"
    return f"{goal.id}: {goal.status}"


# -- joints -------------------------------------------------------------------------
def joint_groups(trace: Trace) -> tuple[list[int], list[int]]:
    """(joints that moved, joints that did not), by their measured and commanded span."""
    if not trace.position:
        return [], []
    measured = np.asarray(trace.position, dtype=float)
    commanded = np.array([row if row is not None else [math.nan] * measured.shape[1] for row in trace.command],
                         dtype=float).reshape(-1, measured.shape[1]) if trace.command else measured[:0]
    moved, flat = [], []
    for j in range(measured.shape[1]):
        values = np.concatenate([measured[:, j], commanded[:, j]])
        values = values[np.isfinite(values)]
        span = float(values.max() - values.min()) if values.size else 0.0
        (moved if span > MOVED_RAD else flat).append(j)
    return moved, flat


def draw_joint(ax: Axes, trace: Trace, joints: Sequence[int], flat: bool = False) -> None:
    """Measured (solid) and commanded (dashed steps) position of ``joints`` on the robot clock."""
    t = np.asarray(trace.t, dtype=float)
    measured = np.asarray(trace.position, dtype=float)
    commanded = np.array([row if row is not None else [math.nan] * measured.shape[1] for row in trace.command],
                         dtype=float) if trace.command else np.full_like(measured, math.nan)
    hold = np.asarray(trace.hold, dtype=bool) if trace.hold else np.zeros(len(t), dtype=bool)
    names = trace.joint_names
    for n, j in enumerate(joints):
        color = f"C{n}" if flat else "C0"
        x, m, c = _thin(t, measured[:, j], commanded[:, j])
        ax.plot(x, m, color=color, lw=1.3, label=f"{names[j]} measured", gid=f"joint-measured-{names[j]}")
        if np.isfinite(c).any():
            ax.step(x, c, where="post", color="C1" if not flat else color, lw=1.0, ls="--", alpha=0.9,
                    label=f"{names[j]} commanded", gid=f"joint-command-{names[j]}")
        if hold.any():
            ax.plot(t[hold], commanded[hold, j], "x", color="#cf222e", ms=5, label="watchdog hold" if n == 0 else None)
    for g in trace.goals:
        if math.isfinite(g.start_t):
            ax.axvline(g.start_t, color="#6e7781", lw=0.6, alpha=0.5)
    if flat:
        centre = float(np.nanmean(measured[:, list(joints)])) if len(t) else 0.0
        ax.set_ylim(centre - FLAT_SPAN_RAD, centre + FLAT_SPAN_RAD)
        ax.set_title(f"did not move (span < {MOVED_RAD * 1e3:g} mrad): drawn flat on +-{FLAT_SPAN_RAD:g} rad",
                     **TITLE)
        ax.set_ylabel("rad")
    else:
        ax.set_title(f"{names[joints[0]]}: commanded vs measured", **TITLE)
        ax.set_ylabel(f"{names[joints[0]]} (rad)")
    ax.grid(alpha=0.3, lw=0.4)
    ax.legend(loc="best", fontsize=7)


def draw_joints(fig: Figure, trace: Trace) -> list[Axes]:
    """One panel per joint that moved, one for all that did not; shared time axis."""
    moved, flat = joint_groups(trace)
    panels: list[tuple[list[int], bool]] = [([j], False) for j in moved] + ([(flat, True)] if flat else [])
    if not panels:
        raise PlotError("no joint states to draw")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (joints, is_flat) in zip(axes, panels):
        draw_joint(ax, trace, joints, is_flat)
    axes[-1].set_xlabel(CLOCK_LABEL)
    return list(axes)


# -- latency ------------------------------------------------------------------------
def draw_latency(ax: Axes, trace: Trace) -> int:
    """Histogram of state -> command latency with its bound; returns the samples drawn."""
    values = _column(trace.latency_ms)
    values = values[np.isfinite(values)]
    if not values.size:
        ax.text(0.5, 0.5, "no command answered a state", transform=ax.transAxes, ha="center")
        ax.set_axis_off()
        return 0
    p50, p99 = np.percentile(values, [50, 99])
    top = max(float(values.max()), trace.latency_bound_ms or 0.0) * 1.05
    ax.hist(values, bins=np.linspace(0.0, top, 60), color="#0969da", alpha=0.8, gid="latency-histogram")
    ax.axvline(p50, color="#1f2328", lw=0.8, ls=":", label=f"p50 {p50:.3g} ms")
    ax.axvline(p99, color="#bc4c00", lw=1.0, ls="--", label=f"p99 {p99:.3g} ms")
    if trace.latency_bound_ms is not None:
        ax.axvline(trace.latency_bound_ms, color="#cf222e", lw=1.6, label=f"bound p99 <= {trace.latency_bound_ms:g} ms",
                   gid="latency-bound")
    ax.set_yscale("log")
    ax.set_xlabel("state stamp -> its first command (ms)")
    ax.set_ylabel("states (log)")
    thinned = f", every {trace.stride}th state" if trace.stride > 1 else ""
    ax.set_title(f"loop latency over {values.size} states{thinned}", **TITLE)
    ax.legend(loc="upper right", fontsize=7)
    ax.grid(alpha=0.3, lw=0.4)
    return int(values.size)


# -- events -------------------------------------------------------------------------
def draw_events(ax: Axes, trace: Trace) -> int:
    """Node events on the robot clock, one row per node, goals shaded behind; returns events drawn."""
    colors = goal_colors(trace.goals)
    end = max([*trace.t, *(e.t for e in trace.events), 0.0])
    for g in trace.goals:
        if not math.isfinite(g.start_t):
            continue
        stop = g.start_t + (g.reached_after_s if g.reached_after_s is not None else g.timeout_s)
        ax.axvspan(g.start_t, min(stop, end) if end > g.start_t else stop, color=colors[g.index], alpha=0.10, lw=0)
        ax.text(g.start_t, 1.0, f" {g.id}", transform=ax.get_xaxis_transform(), fontsize=7, va="top",
                color=STATUS_COLOR.get(g.status, "black"))
    for t in trace.episodes[1:]:
        ax.axvline(t, color="#6e7781", lw=0.6, ls="--")
    nodes = sorted({e.node for e in trace.events})
    rows = {node: i for i, node in enumerate(nodes)}
    for severity, color in SEVERITY_COLOR.items():
        picked = [e for e in trace.events if e.severity == severity]
        if picked:
            ax.plot([e.t for e in picked], [rows[e.node] for e in picked], "o", color=color, ms=6, label=severity,
                    gid=f"events-{severity.lower()}")
    labelled: set[tuple[str, str]] = set()
    for e in trace.events:
        if (e.node, e.code) not in labelled and len(labelled) < 30:
            labelled.add((e.node, e.code))
            ax.annotate(e.code, (e.t, rows[e.node]), xytext=(3, 4), textcoords="offset points", fontsize=7,
                        rotation=20)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_ylim(-0.8, max(len(nodes), 1) - 0.2 + 0.6)
    ax.set_xlim(left=min([0.0, *(e.t for e in trace.events)]), right=max(end, 1e-3) * 1.02)
    ax.set_xlabel(CLOCK_LABEL + "; shaded: goals; dashed: resets")
    ax.set_title(f"{len(trace.events)} events" if trace.events else "no events from the nodes", **TITLE)
    if trace.events:
        ax.legend(loc="lower right", fontsize=7)
    ax.grid(alpha=0.3, axis="x", lw=0.4)
    return len(trace.events)


# -- the one-picture overview (hil bag plot) ----------------------------------------
def overview_figure(trace: Trace, title: str) -> Figure:
    """Every panel in one figure: distances per goal kind, joints, latency, events."""
    if not trace.t:
        raise PlotError("no joint states to draw")
    kinds = goal_kinds(trace)
    moved, flat = joint_groups(trace)
    joint_panels: list[tuple[list[int], bool]] = [([j], False) for j in moved] + ([(flat, True)] if flat else [])
    rows = len(kinds) + math.ceil(len(joint_panels) / 2) + 1
    fig = new_figure(13, 3.0 * rows)
    grid = fig.add_gridspec(rows, 2)
    row = 0
    for kind in kinds:
        draw_goal_distances(fig.add_subplot(grid[row, :]), trace, kind)
        row += 1
    for n, (joints, is_flat) in enumerate(joint_panels):
        ax = fig.add_subplot(grid[row + n // 2, n % 2])
        draw_joint(ax, trace, joints, is_flat)
        ax.set_xlabel(CLOCK_LABEL)
    row += math.ceil(len(joint_panels) / 2)
    draw_latency(fig.add_subplot(grid[row, 0]), trace)
    draw_events(fig.add_subplot(grid[row, 1]), trace)
    fig.suptitle(title, fontsize=11)
    return fig


def safe_id(text: str) -> str:
    """A string usable as an HTML id / SVG salt."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


# -- sweeps -----------------------------------------------------------------------
def draw_pass_rates(ax: Axes, rates: dict[str, tuple[int, int]]) -> None:
    """Share of passing runs per target (label: passed/total)."""
    names = list(rates)
    shares = [100.0 * p / t if t else 0.0 for p, t in rates.values()]
    bars = ax.bar(names, shares, color=["#1a7f37" if s == 100 else "#bf8700" if s >= 50 else "#cf222e"
                                        for s in shares], gid="pass-rates")
    for bar, (passed, total) in zip(bars, rates.values()):
        ax.annotate(f"{passed}/{total}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_ylim(0, 110)
    ax.set_ylabel("runs that passed (%)")
    ax.set_title("success rate per target", **TITLE)
    ax.grid(alpha=0.3, axis="y", lw=0.4)


def draw_distribution(ax: Axes, groups: dict[str, list[float]], ylabel: str, title: str,
                      bound: float | None = None) -> int:
    """A box per group with every value on it (seeds are few: show them all); returns values drawn."""
    labels = [k for k, v in groups.items() if v]
    if not labels:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center")
        ax.set_axis_off()
        return 0
    data = [groups[k] for k in labels]
    ax.boxplot(data, showfliers=False, widths=0.5)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    rng = np.random.default_rng(0)  # fixed jitter: the same page every time
    for i, values in enumerate(data, start=1):
        ax.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, "o", ms=3.5, alpha=0.7, color="C0")
    if bound is not None:
        ax.axhline(bound, color="#cf222e", lw=1.2, ls="--", label=f"bound {bound:g}")
        ax.legend(loc="upper right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, **TITLE)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.grid(alpha=0.3, axis="y", lw=0.4)
    return sum(len(v) for v in data)
