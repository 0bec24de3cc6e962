"""A matrix of runs (seeds x targets), in parallel, one table at the end.

Each cell is a separate ``hil run`` process with its own run folder (ipc
sockets), its own output subfolder and its own nodes, so cells cannot
disturb each other; at most ``jobs`` run at once (default: the cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bus.errors import HilError
from bus.processes import Child, Processes
from scenarios.launch import hil_command
from scenarios.report import EXIT_BROKEN, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, OUTCOMES, table
from scenarios.schema import TARGETS


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
              record: bool | None = None, jobs: int | None = None, echo: bool = True,
              policy: str | None = None) -> tuple[int, str]:
    """Run every (target, seed); returns (exit code, table). 0 all pass, 1 any fail, 2 any broken."""
    hil = hil_command()
    jobs = max(1, jobs or os.cpu_count() or 1)
    cells = [Cell(t, s, out / f"{t}-seed{s}") for t in targets for s in seeds]
    waiting = list(cells)
    running: list[Cell] = []
    interrupted = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = Processes()
    try:
        while (waiting or running) and not interrupted:
            while waiting and len(running) < jobs:
                cell = waiting.pop(0)
                argv = [*hil, "run", str(scenario), "--target", cell.target, "--seed", str(cell.seed),
                        "--out", str(cell.out), "--no-progress"]
                if port:
                    argv += ["--port", port]
                if policy:
                    argv += ["--policy", policy]
                if record is not None:
                    argv.append("--record" if record else "--no-record")
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
                    if echo:
                        print(f"{cell.target} seed {cell.seed}: {OUTCOMES.get(cell.exit_code, cell.exit_code)} "
                              f"({cell.wall_s:.1f} s)", file=sys.stderr, flush=True)
    finally:
        for cell in running:
            _stop_cell(processes, cell)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    rows = [c.summary() for c in cells if c.exit_code is not None]
    text = table(rows, ["target", "seed", "outcome", "asserts", "wall s", "failed / error"])
    codes = [c.exit_code for c in cells]
    if interrupted:
        return EXIT_INTERRUPTED, text
    if any(c not in (EXIT_PASS, EXIT_FAIL) for c in codes):
        return EXIT_BROKEN, text
    return (EXIT_FAIL if any(c == EXIT_FAIL for c in codes) else EXIT_PASS), text


def _stop_cell(processes: Processes, cell: Cell) -> None:
    """SIGTERM the cell's runner (it stops its own nodes), bounded, then SIGKILL."""
    assert cell.proc is not None
    processes.stop([cell.proc], term_s=15.0)
    cell.exit_code = cell.proc.returncode
    cell.wall_s = time.monotonic() - cell.started
