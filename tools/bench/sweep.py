"""``hil bench sweep``: cells per minute of a sweep on the local process pool and on Ray, in the same run.

Both engines run the same cells (``hil run`` of one scenario, one target,
one seed each) at the same parallelism on this machine, one after the
other; the local pool is the baseline. For Ray the figures are:

- cells per minute from the first submission to the last result (the
  start of the local Ray instance is printed apart: a real cluster is
  already up when a sweep is submitted to it);
- the scheduling delay of each task: from its submission (with a slot
  free, since tasks are submitted no faster than there are slots) to the
  moment its body started on a worker.

Target: Ray's throughput at most 15 % below the local pool's.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scenarios.cell_command import cell_args
from scenarios.executors import load_ray
from scenarios.report import EXIT_PASS
from scenarios.stats import quantile
from scenarios.sweep import run_sweep
from tools.bench.targets import Targets, verdict

if TYPE_CHECKING:  # Ray is optional: the types only
    from scenarios.ray_cells import CellJob, CellOutcome

OVERHEAD_TARGET = 0.15


@dataclass
class EngineFigures:
    name: str
    cells: int
    passed: int
    window_s: float
    start_s: float = 0.0  # the engine's own start (a local Ray instance); not in the window
    delays_s: list[float] = field(default_factory=list)
    cell_walls_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "seed N: what failed", for cells that did not pass

    @property
    def per_minute(self) -> float:
        return 60.0 * self.cells / self.window_s if self.window_s > 0 else 0.0


def local_pool(scenario: Path, target: str, seeds: list[int], jobs: int, out: Path) -> EngineFigures:
    started = time.monotonic()
    _code, _text = run_sweep(scenario, [target], seeds, out, jobs=jobs, echo=False, record=False)
    window = time.monotonic() - started
    cells = json.loads((out / "summary.json").read_text())["cells"]
    return EngineFigures("local pool", len(seeds), sum(c["exit_code"] == EXIT_PASS for c in cells), window,
                         cell_walls_s=[c["wall_s"] for c in cells],
                         failures=[_failure(out / f"{target}-seed{c['seed']}", c["seed"]) for c in cells
                                   if c["exit_code"] != EXIT_PASS])


def ray_local(scenario: Path, target: str, seeds: list[int], jobs: int, out: Path) -> EngineFigures:
    ray_cells = load_ray("scenarios.ray_cells")
    session = load_ray("scenarios.ray_session")
    jobs_list = [ray_cells.CellJob(target, s, out / f"{target}-seed{s}",
                                   cell_args(scenario, target, s, out / f"{target}-seed{s}", record=False))
                 for s in seeds]
    outcomes = []
    ends: list[float] = []
    failures: list[str] = []

    def done(job: CellJob, outcome: CellOutcome) -> None:
        outcomes.append(outcome)
        ends.append(time.time())
        if outcome.exit_code != EXIT_PASS:
            failures.append(_failure(job.out, job.seed, outcome.error))

    called = time.time()
    ray_cells.run_cells(jobs_list, session.RaySettings(num_cpus=jobs), done, lambda: False, max_parallel=jobs,
                        warm_up=True)
    first = min((o.submitted_at for o in outcomes if o.submitted_at), default=called)
    return EngineFigures("ray (local)", len(seeds), sum(o.exit_code == EXIT_PASS for o in outcomes),
                         max(ends, default=first) - first, start_s=first - called,
                         delays_s=[o.scheduling_delay_s for o in outcomes if o.started_at],
                         cell_walls_s=[o.wall_s for o in outcomes], failures=failures)


def _failure(folder: Path, seed: int, error: str = "") -> str:
    """What a cell that did not pass failed, from its report.json: the bench's figures mean little without it."""
    try:
        data = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return f"seed {seed}: {error or 'no report.json'}"
    failed = [f"{v['name']} {v['figure'] if v['figure'] is not None else ''} {v['unit']} ({v['bound']})".replace("  ", " ")
              for v in data.get("verdicts", []) if not v["passed"]]
    return f"seed {seed}: " + ("; ".join(failed) or (data.get("error") or "").split("\n")[0] or error)


def report(scenario: Path, target: str, seeds: list[int], jobs: int, keep: Path | None, targets: Targets) -> str:
    """Run both engines; the text, each target checked into ``targets`` (the caller prints its line)."""
    tmp = Path(tempfile.mkdtemp(prefix="hil-bench-sweep-"))
    base = keep or tmp
    try:
        local = local_pool(scenario, target, seeds, jobs, base / "local")
        ray = ray_local(scenario, target, seeds, jobs, base / "ray")
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    overhead = 1.0 - ray.per_minute / local.per_minute if local.per_minute else 1.0
    lines = [f"{len(seeds)} cells of {scenario} on {target}, {jobs} at once, each engine in turn on this machine",
             f"  {'engine':<12} {'cells':>5} {'passed':>6} {'window s':>9} {'cells/min':>9} {'cell s p50':>10}  "
             "start s (Ray and its workers; not in the window)"]
    for e in (local, ray):
        start = f"{e.start_s:.1f}" if e.start_s else "-"
        wall = statistics.median(e.cell_walls_s) if e.cell_walls_s else 0.0
        lines.append(f"  {e.name:<12} {e.cells:>5} {e.passed:>6} {e.window_s:>9.1f} {e.per_minute:>9.1f} {wall:>10.2f}  "
                     f"{start}")
    for e in (local, ray):
        lines += [f"  {e.name} did not pass {f}" for f in e.failures]
    if ray.delays_s:
        lines.append(f"ray scheduling delay per task (submit to start, slot free): median "
                     f"{statistics.median(ray.delays_s) * 1e3:.1f} ms, p90 {quantile(ray.delays_s, 0.9) * 1e3:.1f} ms, "
                     f"max {max(ray.delays_s) * 1e3:.1f} ms over {len(ray.delays_s)} tasks")
    passed = local.passed + ray.passed
    lines += [
        f"ray overhead {overhead:+.1%} (target <= {OVERHEAD_TARGET:.0%}: "
        f"{verdict(targets.check('ray overhead', overhead, OVERHEAD_TARGET))})",
        f"cells passed on both engines: {local.passed}+{ray.passed} of {2 * len(seeds)} (target all: "
        f"{verdict(targets.check('every cell passed on both engines', passed, 2 * len(seeds), kind='min'))})",
    ]
    return "\n".join(lines)
