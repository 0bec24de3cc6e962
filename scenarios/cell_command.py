"""The ``hil run`` command line of one sweep cell, the same for every executor.

A local cell and a Ray task run exactly this child command, so a cell behaves
the same wherever it runs and can be re-run alone by pasting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def cell_args(scenario: Path, target: str, seed: int, out: Path, *, port: str | None = None,
              record: bool | None = None, policy: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """Arguments after ``hil``: one target, one seed, its own output folder, no status line.

    A ``remote`` target is whatever the running robot is (``hil run --remote``, in ``extra``);
    ``policy`` replaces the scenario's (``hil run --policy``)."""
    args = ["run", str(scenario), "--seed", str(seed), "--out", str(out), "--no-progress"]
    if target != "remote":
        args += ["--target", target]
    if port:
        args += ["--port", port]
    if policy:
        args += ["--policy", policy]
    if record is not None:
        args.append("--record" if record else "--no-record")
    return [*args, *extra]
