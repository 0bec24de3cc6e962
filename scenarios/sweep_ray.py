"""The glue between a sweep (scenarios/sweep.py) and Ray (scenarios/ray_cells.py).

Kept apart so that sweep.py only says "run these cells on Ray" and Ray stays
an optional import: without Ray installed this module still loads, and
asking for it is a broken set-up that names the install line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scenarios.cell_command import cell_args
from scenarios.executors import ExecutorError, load_ray
from scenarios.report import EXIT_BROKEN, OUTCOMES
from scenarios.sweep_stats import CellRecord, SweepBook

if TYPE_CHECKING:  # Ray is optional: the types only, for the checker
    from scenarios.ray_cells import CellJob, CellOutcome


class SweepCell(Protocol):
    """What a sweep's cell has (scenarios.sweep.Cell); filled in as the cell ends."""

    target: str
    seed: int
    out: Path
    wall_s: float
    exit_code: int | None


def run_on_ray(scenario: Path, cells: list[SweepCell], book: SweepBook, should_stop: Callable[[], bool], *,
               port: str | None, record: bool | None, jobs: int | None, address: str | None,
               echo: bool = True, policy: str | None = None) -> bool:
    """Every cell as a Ray task; each result goes into ``book`` as it comes. True when stopped early.

    A Ray that cannot start or be reached, or hw cells without an advertised
    arm, end the sweep as broken (``book.setup_error``).
    """
    try:
        ray_cells = load_ray("scenarios.ray_cells")
        ray_session = load_ray("scenarios.ray_session")
    except ExecutorError as exc:
        book.setup_error = str(exc)
        return False
    by_key = {(c.target, c.seed): c for c in cells}
    jobs_list = [ray_cells.CellJob(c.target, c.seed, c.out,
                                   cell_args(scenario, c.target, c.seed, c.out, record=record,
                                             port=None if c.target == "hw" else port, policy=policy),
                                   port=port if c.target == "hw" else None) for c in cells]

    def done(job: CellJob, outcome: CellOutcome) -> None:
        cell = by_key[(job.target, job.seed)]
        cell.exit_code, cell.wall_s = outcome.exit_code, outcome.wall_s
        has_report = (cell.out / "report.json").exists()
        error = outcome.error if cell.exit_code == EXIT_BROKEN or not has_report else ""
        book.add(CellRecord.from_folder(cell.target, cell.seed, outcome.exit_code, outcome.wall_s, cell.out,
                                        error=error, where=outcome.where, port=outcome.port,
                                        started_at=outcome.started_at, ended_at=outcome.ended_at))
        if echo:
            where = f" on {outcome.where}" if outcome.where else ""
            print(f"{cell.target} seed {cell.seed}: {OUTCOMES.get(cell.exit_code, cell.exit_code)} "
                  f"({cell.wall_s:.1f} s{where})", file=sys.stderr, flush=True)

    settings = ray_session.RaySettings(address=address, num_cpus=jobs)
    try:
        return ray_cells.run_cells(jobs_list, settings, done, should_stop, max_parallel=jobs)
    except ExecutorError as exc:
        book.setup_error = str(exc)
        return False
