"""``hil bag check-policy`` over many bags at once: a process pool here, or Ray tasks, and one summary.

Each bag is checked exactly as a single one is (tools/bag/check_policy.py),
in its own worker process; results come back as plain data and are printed
as one table (nothing cut short) with a verdict per bag:

- pass: every checked command matches within --atol;
- FAIL: the policy diverges (the first diverging step is named);
- ERROR: the bag cannot be checked (unreadable, no states or commands,
  a policy that does not load).

Exit status: 2 when any bag could not be checked, else 1 when any fails, else 0.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.wrap_table import wrapped_table
from tools.bag.check_policy import CheckError, check_policy
from tools.bag.compat import SchemaIncompatible
from tools.bag.reader import BagReadError

EXIT_PASS, EXIT_FAIL, EXIT_BROKEN = 0, 1, 2


@dataclass
class BagOutcome:
    """What checking one bag said, as plain data (it crosses process and machine boundaries)."""

    bag: str
    ok: bool = False
    error: str = ""  # the bag could not be checked
    policy: str = ""
    steps: int = 0
    diverging_steps: int = 0
    first: dict[str, Any] | None = None
    max_error: list[float | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    where: str = ""
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_BROKEN if self.error else (EXIT_PASS if self.ok else EXIT_FAIL)

    @property
    def verdict(self) -> str:
        return {EXIT_PASS: "pass", EXIT_FAIL: "FAIL", EXIT_BROKEN: "ERROR"}[self.exit_code]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}


def check_one(bag: str, source: str, atol: float, dt: float | None, data: bytes | None = None) -> dict[str, Any]:
    """Check one bag (in a pool worker or a Ray task); ``data``: the bag's bytes when this machine lacks it."""
    started = time.monotonic()
    outcome = BagOutcome(bag, where=socket.gethostname())
    path = Path(bag)
    temp: Path | None = None
    try:
        if data is not None and not path.is_file():
            temp = Path(f"/tmp/hil-bag-{os.getpid()}-{path.name}")
            temp.write_bytes(data)
            path = temp
        result = check_policy(path, source, atol, dt)
    except (BagReadError, CheckError, SchemaIncompatible, OSError) as exc:
        outcome.error = str(exc) or type(exc).__name__
    else:
        outcome.ok, outcome.policy, outcome.steps = result.ok, result.policy, result.steps
        outcome.diverging_steps, outcome.notes = result.diverging_steps, list(result.notes)
        outcome.max_error = [float(e) if np.isfinite(e) else None for e in result.max_error]
        if result.first is not None:
            d = result.first
            outcome.first = {"step": d.step, "obs_seq": d.obs_seq, "time_s": d.time_s, "joint": d.joint,
                             "recorded": d.recorded, "replayed": d.replayed}
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    outcome.wall_s = time.monotonic() - started
    return asdict(outcome)


def _check_args(args: tuple[str, str, float, float | None]) -> dict[str, Any]:
    return check_one(*args)


def check_local(bags: list[Path], source: str, atol: float, dt: float | None, jobs: int | None,
                on_done: Callable[[BagOutcome], None]) -> list[BagOutcome]:
    """A pool of fresh ('spawn') processes; Ctrl-C terminates the pool and re-raises."""
    work = [(str(b), source, atol, dt) for b in bags]
    outcomes = []
    pool = multiprocessing.get_context("spawn").Pool(max(1, min(jobs or os.cpu_count() or 1, len(bags))))
    try:
        for data in pool.imap_unordered(_check_args, work):
            outcome = BagOutcome(**data)
            outcomes.append(outcome)
            on_done(outcome)
        pool.close()
    finally:
        pool.terminate()
        pool.join()
    return outcomes


def exit_code(outcomes: list[BagOutcome]) -> int:
    codes = {o.exit_code for o in outcomes}
    return EXIT_BROKEN if EXIT_BROKEN in codes else (EXIT_FAIL if EXIT_FAIL in codes else EXIT_PASS)


def summary(outcomes: list[BagOutcome], source: str, atol: float, executor: str) -> str:
    """One table over every bag, in the order given, then the counts."""
    rows = []
    for o in outcomes:
        if o.error:
            rows.append([o.bag, o.verdict, "-", "-", o.error])
            continue
        worst = max((e if e is not None else float("inf") for e in o.max_error), default=0.0)
        first = "-"
        if o.first:
            f = o.first
            first = (f"step {f['step']} (obs_seq {f['obs_seq']}, t = {f['time_s']:.3f} s): {f['joint']} recorded "
                     f"{f['recorded']:.6f}, policy now {f['replayed']:.6f}; {o.diverging_steps} of {o.steps} "
                     "steps diverge")
        rows.append([o.bag, o.verdict, str(o.steps), f"{worst:.3g}", first])
    counts = {v: sum(o.verdict == v for o in outcomes) for v in ("pass", "FAIL", "ERROR")}
    return "\n".join([
        f"check-policy: {source} against {len(outcomes)} bags (atol {atol:g}, executor {executor})",
        wrapped_table(rows, ["bag", "result", "steps", "max |error| rad", "first divergence / why not checked"],
                      [48, None, None, None, 60]),
        f"passed {counts['pass']}, failed {counts['FAIL']}, could not check {counts['ERROR']}",
    ])
