"""A matrix of runs (seeds x targets), in parallel, one table at the end.

Each cell is a separate ``hil run`` process with its own run folder (ipc
sockets), its own output subfolder and its own nodes, so cells cannot
disturb each other; at most ``jobs`` run at once (default: the cores).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bus.errors import HilError
from bus.processes import Child, Processes
from scenarios.cell_command import cell_args
from scenarios.launch import hil_command
from scenarios.report import EXIT_INTERRUPTED, OUTCOMES, table
from scenarios.schema import TARGETS, load
from scenarios.sweep_page import CellSummary, SweepSummary, cell_summary, read_report, write_sweep_page
from scenarios.sweep_ray import run_on_ray
from scenarios.sweep_stats import CellRecord, SweepBook

# Width of the table's last column; longer text wraps at word boundaries (never cut).
NOTE_WIDTH = 60
_HOST = socket.gethostname()


class SweepError(HilError, ValueError):
    """A --seeds or --target value that cannot be read."""


def parse_seeds(text: str) -> list[int]:
    """``0..19`` (inclusive), ``3``, or a comma list of both: ``0..4,10``."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ".." in part:
                first, last = (int(x) for x in part.split("..", 1))
                if last < first or first < 0:
                    raise SweepError(f"--seeds: {part!r} is not a range FIRST..LAST with 0 <= FIRST <= LAST")
                seeds.extend(range(first, last + 1))
            else:
                seed = int(part)
                if seed < 0:
                    raise ValueError
                seeds.append(seed)
        except ValueError:
            raise SweepError(f"--seeds: {part!r} is not a seed (N) or a range (FIRST..LAST)") from None
    return list(dict.fromkeys(seeds))


def parse_targets(text: str) -> list[str]:
    targets = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise SweepError(f"--target: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    return list(dict.fromkeys(targets))


@dataclass
class Cell:
    target: str
    seed: int
    out: Path
    proc: Child | None = None
    started: float = 0.0
    wall_s: float = 0.0
    exit_code: int | None = None

    def summary(self) -> CellSummary:
        """The cell from its report.json (or why there is none)."""
        outcome = OUTCOMES.get(self.exit_code if self.exit_code is not None else -1, f"exit {self.exit_code}")
        return cell_summary(self.target, self.seed, self.out.name, outcome, self.exit_code, self.wall_s,
                            read_report(self.out))


def _row(cell: CellSummary) -> list[str]:
    """A table row; a multi-line error says where the rest is (the full text is in sweep.json)."""
    note = cell.note()
    if not cell.failed and len(cell.error.splitlines()) > 1:
        note += f" (full text: {cell.folder}/report.html)"
    return [cell.target, str(cell.seed), cell.outcome, cell.asserts, f"{cell.wall_s:.1f}", note]


def run_sweep(scenario: Path, targets: list[str], seeds: list[int], out: Path, *, port: str | None = None,
              record: bool | None = None, jobs: int | None = None, echo: bool = True, executor: str = "local",
              address: str | None = None, confidence: float | None = None, policy: str | None = None,
              extra: Sequence[str] = ()) -> tuple[int, str]:
    """Run every (target, seed); returns (exit code, tables): 130 interrupted, 2 any broken, else with a
    ``success_rate`` gate the gate decides over goals (scenarios/sweep_stats.py), else 1 any fail, 0 all pass.

    ``policy`` replaces the scenario's policy in every cell (``hil run --policy``); ``extra`` goes to
    every ``hil run`` (the bench's --endpoints, --keys, --remote).
    """
    hil = hil_command()
    asked_jobs = jobs
    jobs = max(1, jobs or os.cpu_count() or 1)
    cells = [Cell(t, s, out / f"{t}-seed{s}") for t in targets for s in seeds]
    # summary.json and junit.xml, rewritten as each cell ends (sweep_stats.py)
    book = SweepBook(load(scenario), targets, seeds, out, executor=executor, confidence=confidence)
    book.write()
    waiting = list(cells)
    running: list[Cell] = []
    interrupted = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = Processes()
    try:
        if executor == "ray":  # the same cells as Ray tasks (sweep_ray.py, ray_cells.py)
            interrupted = run_on_ray(scenario, cells, book, lambda: interrupted, port=port, record=record,
                                     jobs=asked_jobs, address=address, echo=echo, policy=policy) or interrupted
            waiting = []
        while (waiting or running) and not interrupted:
            while waiting and len(running) < jobs:
                cell = waiting.pop(0)
                argv = [*hil, *cell_args(scenario, cell.target, cell.seed, cell.out, port=port, record=record,
                                         policy=policy, extra=extra)]
                cell.out.mkdir(parents=True, exist_ok=True)
                with open(cell.out / "runner.log", "wb") as log:
                    cell.proc = processes.start(f"{cell.target}-seed{cell.seed}", argv, stdout=log,
                                                stderr=subprocess.STDOUT)
                cell.started = time.monotonic()
                running.append(cell)
            time.sleep(0.05)
            for cell in list(running):
                assert cell.proc is not None
                if cell.proc.poll() is not None:
                    cell.exit_code = cell.proc.returncode
                    cell.wall_s = time.monotonic() - cell.started
                    running.remove(cell)
                    book.add(CellRecord.from_folder(cell.target, cell.seed, cell.exit_code, cell.wall_s, cell.out,
                                                    where=_HOST))  # sweep statistics
                    if echo:
                        print(f"{cell.target} seed {cell.seed}: {OUTCOMES.get(cell.exit_code, cell.exit_code)} "
                              f"({cell.wall_s:.1f} s)", file=sys.stderr, flush=True)
    finally:
        for cell in running:
            _stop_cell(processes, cell)
            code = EXIT_INTERRUPTED if cell.exit_code is None else cell.exit_code
            book.add(CellRecord.from_folder(cell.target, cell.seed, code, cell.wall_s, cell.out, where=_HOST),
                     write=False)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    done = [c.summary() for c in cells if c.exit_code is not None]
    text = table([_row(c) for c in done], ["target", "seed", "outcome", "asserts", "wall s", "failed / error"],
                 wrap={5: NOTE_WIDTH})
    book.interrupted = interrupted
    book.write()
    code = book.exit_code()
    text += f"\n\n{book.text()}"
    page = write_sweep_page(SweepSummary(scenario.stem, targets, seeds, code, done), out)
    if page is not None:
        text += f"\nsweep report: {page} (every run: {out}/<target>-seed<N>/report.html)"
    return code, text


def _stop_cell(processes: Processes, cell: Cell) -> None:
    """SIGTERM the cell's runner (it stops its own nodes), bounded, then SIGKILL."""
    assert cell.proc is not None
    processes.stop([cell.proc], term_s=15.0)
    cell.exit_code = cell.proc.returncode
    cell.wall_s = time.monotonic() - cell.started
