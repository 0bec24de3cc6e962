"""Targets of a benchmark: each figure checked against its limit, one closing line, one exit status.

Every ``hil bench ...`` ends the same way:

    targets = Targets()
    targets.check("bus round trip p50 / raw", ratio, 1.6)            # at most
    targets.check("lockstep mock steps/s", rate, 3000, kind="min")   # at least
    ...
    click.echo(targets.line())          # targets: 1 met, 1 missed (lockstep mock steps/s)
    raise SystemExit(targets.exit_code())  # 1 when one was missed, 0 when all were met

A figure that could not be measured (NaN) counts as missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["max", "min"]


@dataclass
class Targets:
    """The targets checked so far, in order: (name, met)."""

    results: list[tuple[str, bool]] = field(default_factory=list)

    def check(self, name: str, measured: float, limit: float, kind: Kind = "max") -> bool:
        """Record whether ``measured`` is at most (``kind='max'``) or at least (``'min'``) ``limit``."""
        if kind not in ("max", "min"):
            raise ValueError(f"kind must be 'max' or 'min', got {kind!r}")
        met = not math.isnan(measured) and (measured <= limit if kind == "max" else measured >= limit)
        self.results.append((name, met))
        return met

    def line(self) -> str:
        """``targets: N met, M missed (names of the missed)``."""
        missed = [name for name, met in self.results if not met]
        text = f"targets: {len(self.results) - len(missed)} met, {len(missed)} missed"
        return f"{text} ({', '.join(missed)})" if missed else text

    def exit_code(self) -> int:
        """1 when a target was missed, 0 when all were met."""
        return 1 if any(not met for _name, met in self.results) else 0


def verdict(met: bool) -> str:
    """How a report line marks one target."""
    return "ok" if met else "MISSED"
