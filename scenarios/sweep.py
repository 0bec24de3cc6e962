"""A matrix of runs (seeds x targets), in parallel, one table at the end.

Each cell is a separate ``hil run`` process with its own run folder (ipc
sockets), its own output subfolder and its own nodes, so cells cannot
disturb each other; at most ``jobs`` run at once (default: the cores).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scenarios.cell_command import cell_args
from scenarios.launch import hil_command
from scenarios.report import EXIT_INTERRUPTED, OUTCOMES, table
from scenarios.schema import TARGETS, load
from scenarios.supervisor import stop_groups
from scenarios.sweep_ray import run_on_ray
from scenarios.sweep_stats import CellRecord, SweepBook


_HOST = socket.gethostname()


class SweepError(ValueError):
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
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    wall_s: float = 0.0
    exit_code: int | None = None

    def summary(self) -> list[str]:
        """One table row from the cell's report.json (or why there is none)."""
        outcome = OUTCOMES.get(self.exit_code if self.exit_code is not None else -1, f"exit {self.exit_code}")
        try:
            report = json.loads((self.out / "report.json").read_text())
        except (OSError, ValueError):
            return [self.target, str(self.seed), outcome, "-", f"{self.wall_s:.1f}", "no report.json"]
        verdicts = report.get("verdicts", [])
        failed = [v["name"] for v in verdicts if not v["passed"]]
        passed = f"{len(verdicts) - len(failed)}/{len(verdicts)}"
        error = (report.get("error") or "").splitlines()
        note = ", ".join(failed) or (error[0] if error else "")
        return [self.target, str(self.seed), outcome, passed, f"{self.wall_s:.1f}", note[:70]]


def run_sweep(scenario: Path, targets: list[str], seeds: list[int], out: Path, *, port: str | None = None,
              record: bool | None = None, jobs: int | None = None, echo: bool = True, executor: str = "local",
              address: str | None = None, confidence: float | None = None) -> tuple[int, str]:
    """Run every (target, seed); returns (exit code, tables). 0 all pass, 1 any fail, 2 any broken;
    with a ``success_rate`` gate, the gate decides over goals (scenarios/sweep_stats.py)."""
    hil = hil_command()
    asked_jobs = jobs
    jobs = max(1, jobs or os.cpu_count() or 1)
    cells = [Cell(t, s, out / f"{t}-seed{s}") for t in targets for s in seeds]
    # -- sweep statistics: summary.json and junit.xml, rewritten as each cell ends (sweep_stats.py) --
    book = SweepBook(load(scenario), targets, seeds, out, executor=executor, confidence=confidence)
    book.write()
    # -- end sweep statistics --
    waiting = list(cells)
    running: list[Cell] = []
    interrupted = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # -- executor ray: the same cells as Ray tasks (sweep_ray.py, ray_cells.py) --
        if executor == "ray":
            interrupted = run_on_ray(scenario, cells, book, lambda: interrupted, port=port, record=record,
                                     jobs=asked_jobs, address=address, echo=echo) or interrupted
            waiting = []
        # -- end executor ray --
        while (waiting or running) and not interrupted:
            while waiting and len(running) < jobs:
                cell = waiting.pop(0)
                argv = [*hil, *cell_args(scenario, cell.target, cell.seed, cell.out, port=port, record=record)]
                cell.out.mkdir(parents=True, exist_ok=True)
                with open(cell.out / "runner.log", "wb") as log:
                    cell.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                                 start_new_session=True)
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
            _stop_cell(cell)
            code = EXIT_INTERRUPTED if cell.exit_code is None else cell.exit_code
            book.add(CellRecord.from_folder(cell.target, cell.seed, code, cell.wall_s, cell.out, where=_HOST),
                     write=False)  # sweep statistics
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    rows = [c.summary() for c in cells if c.exit_code is not None]
    text = table(rows, ["target", "seed", "outcome", "asserts", "wall s", "failed / error"])
    # -- sweep statistics: the exit code follows the book (interrupted, broken, the gate, failures) --
    book.interrupted = interrupted
    book.write()
    return book.exit_code(), f"{text}\n\n{book.text()}"


def _stop_cell(cell: Cell) -> None:
    """SIGTERM the cell's runner (it stops its own nodes), bounded, then SIGKILL."""
    assert cell.proc is not None
    stop_groups([cell.proc], term_s=15.0)
    cell.exit_code = cell.proc.returncode
    cell.wall_s = time.monotonic() - cell.started
