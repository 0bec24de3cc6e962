"""Turning what a run observed into verdicts: one per assertion (per goal, per node).

Pure functions of an ``Observed`` record, so they are tested on synthetic
figures and the runner only has to gather the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bus.latency import EMPTY, Summary
from scenarios.goals import GoalResult
from scenarios.monitor import HoldWatch
from scenarios.schema import Assertions


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    figure: float | None
    unit: str
    bound: str
    detail: str = ""
    # Never judged: a goal the run ended before it started ("not run", not a failure figure).
    skipped: bool = False

    @property
    def result(self) -> str:
        """What the tables show: pass, FAIL or not run."""
        if self.skipped:
            return "not run"
        return "pass" if self.passed else "FAIL"

    @property
    def figure_text(self) -> str:
        if self.figure is None or (isinstance(self.figure, float) and not math.isfinite(self.figure)):
            return "-"
        return f"{self.figure:.4g} {self.unit}".strip()


@dataclass
class NodeOutcome:
    name: str
    role: str
    exit_code: int | None
    stop_how: str
    killed_on_purpose: bool = False
    died_during_run: bool = False
    faults: list[str] = field(default_factory=list)


@dataclass
class Observed:
    goals: list[GoalResult] = field(default_factory=list)
    steps: int = 0
    limit_excess: float = 0.0
    limit_where: str = ""
    tracking_max: float = math.nan
    tracking_mean: float = math.nan
    tracking_count: int = 0
    tracking_where: str = ""
    latency: Summary = EMPTY
    deadline_misses: int | None = None
    hold: HoldWatch | None = None
    nodes: list[NodeOutcome] = field(default_factory=list)


def judge(assertions: Assertions, seen: Observed) -> list[Verdict]:
    """Every verdict the scenario asks for, in a stable order."""
    verdicts: list[Verdict] = []
    if assertions.goals:
        verdicts += [goal_verdict(goal) for goal in seen.goals]
    if assertions.joint_limits is not None:
        margin = assertions.joint_limits.margin_rad
        verdicts.append(Verdict("joint_limits", seen.limit_excess <= margin, seen.limit_excess, "rad",
                                f"<= {margin:g} rad beyond a limit",
                                seen.limit_where if seen.limit_excess > 0 else f"{seen.steps} states inside the limits"))
    if assertions.tracking_error is not None:
        verdicts.append(tracking_verdict(assertions.tracking_error.max_rad, assertions.tracking_error.lag_steps, seen))
    if assertions.loop_latency is not None:
        verdicts.append(latency_verdict(assertions.loop_latency.p99_ms, seen.latency))
    if assertions.deadline_misses is not None:
        verdicts.append(deadline_verdict(assertions.deadline_misses.max_rate, assertions.deadline_misses.min_count,
                                         seen))
    if assertions.hold_after_kill is not None:
        verdicts.append(hold_verdict(assertions.hold_after_kill.max_drift_rad, seen.hold))
    if assertions.no_crash:
        verdicts += [crash_verdict(node) for node in seen.nodes]
    return verdicts


def goal_verdict(goal: GoalResult) -> Verdict:
    bound = f"<= {goal.shown(goal.tolerance):g} {goal.unit} within {goal.timeout_s:g} s"
    if math.isnan(goal.started_sim) and not goal.reached:
        why = goal.note or "the run ended first"
        return Verdict(f"goal:{goal.id}", False, None, goal.unit, bound, f"not run: {why}", skipped=True)
    if goal.reached:
        detail = f"reached after {goal.time_s:.3f} s (sim time)"
    else:
        best = goal.shown(goal.best_error)
        detail = goal.note or (f"not reached; best {best:.4g} {goal.unit}" if math.isfinite(best) else "not reached")
    return Verdict(f"goal:{goal.id}", goal.reached, goal.shown(goal.error), goal.unit, bound, detail)


def tracking_verdict(max_rad: float, lag: int, seen: Observed) -> Verdict:
    bound = f"<= {max_rad:g} rad (command vs state {lag} steps later)"
    if seen.tracking_count == 0:
        return Verdict("tracking_error", False, None, "rad", bound, "no command could be paired with a later state")
    return Verdict("tracking_error", seen.tracking_max <= max_rad, seen.tracking_max, "rad", bound,
                   f"mean {seen.tracking_mean:.4g} rad over {seen.tracking_count} steps; worst {seen.tracking_where}")


def latency_verdict(p99_ms: float, latency: Summary) -> Verdict:
    bound = f"p99 <= {p99_ms:g} ms"
    if latency.count == 0:
        return Verdict("loop_latency", False, None, "ms", bound, "no command answered a state")
    p99 = latency.p99_s * 1e3
    return Verdict("loop_latency", p99 <= p99_ms, p99, "ms", bound,
                   f"p50 {latency.p50_s * 1e3:.3f} ms, max {latency.max_s * 1e3:.3f} ms over {latency.count} commands")


def deadline_verdict(max_rate: float | None, min_count: int | None, seen: Observed) -> Verdict:
    parts = []
    if max_rate is not None:
        parts.append(f"rate <= {max_rate:g}")
    if min_count is not None:
        parts.append(f"count >= {min_count} (a miss is expected)")
    bound = " and ".join(parts)
    if seen.deadline_misses is None:
        return Verdict("deadline_misses", False, None, "", bound, "the robot reported no deadline_miss counter")
    misses = seen.deadline_misses
    rate = misses / seen.steps if seen.steps else 0.0
    passed = (max_rate is None or rate <= max_rate) and (min_count is None or misses >= min_count)
    figure, unit = (rate, "") if max_rate is not None else (float(misses), "misses")
    return Verdict("deadline_misses", passed, figure, unit, bound, f"{misses} misses in {seen.steps} steps")


def hold_verdict(max_drift: float, hold: HoldWatch | None) -> Verdict:
    bound = f"drift <= {max_drift:g} rad after the kill"
    if hold is None or hold.samples == 0:
        return Verdict("hold_after_kill", False, None, "rad", bound, "no state after the kill (+ settle) was seen")
    return Verdict("hold_after_kill", hold.max_drift <= max_drift, hold.max_drift, "rad", bound,
                   f"{hold.samples} states from t={hold.kill_sim_time + hold.settle_s:.3f} s")


def crash_verdict(node: NodeOutcome) -> Verdict:
    name = f"no_crash:{node.name}"
    if node.killed_on_purpose:
        return Verdict(name, True, None, "", "alive until stopped", "killed on purpose by the scenario")
    problems = list(node.faults)
    if node.died_during_run:
        problems.append(f"exited during the run with status {node.exit_code}")
    elif node.exit_code not in (0, None):
        problems.append(f"exit status {node.exit_code} after {node.stop_how}")
    if node.stop_how == "SIGKILL":
        problems.append("ignored shutdown and SIGTERM; needed SIGKILL")
    detail = "; ".join(problems) if problems else f"stopped by {node.stop_how}, exit status {node.exit_code}"
    return Verdict(name, not problems, None, "", "alive until stopped, clean exit", detail)
