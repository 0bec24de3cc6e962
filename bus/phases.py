"""CPU time per phase of a node's loop: where a step's CPU goes in the live node.

A profiler that samples the process slows a loop of a few hundred
microseconds severalfold and moves the shares; timing the same code in a
hot in-process loop misses what a live node pays after every wake-up (on a
small machine the other process has just run on the same core and its
caches are cold). So a node started with ``--phases`` reads its own
thread's CPU clock at a few marks of each step and adds the time since the
previous mark to the phase that just ended; ``info.metrics`` then has the
mean per step (``cpu_us.<phase>``). Each mark is one system call (about a
microsecond), so it is off unless asked for: without it the loop's marks go
to a clock whose ``mark`` does nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from schemas import services_pb2

PREFIX = "cpu_us."


class PhaseClock:
    """Thread CPU nanoseconds per named phase, and the number of steps they cover."""

    def __init__(self, order: Sequence[str] = ()) -> None:
        self._ns: dict[str, int] = dict.fromkeys(order, 0)  # printed in the loop's order, not first-seen
        self._last = time.thread_time_ns()
        self.steps = 0

    def mark(self, phase: str) -> None:
        """The CPU time since the previous mark belongs to ``phase``."""
        now = time.thread_time_ns()
        self._ns[phase] = self._ns.get(phase, 0) + now - self._last
        self._last = now

    def skip(self) -> None:
        """Drop the CPU time since the previous mark (it belongs to no step, e.g. a reset)."""
        self._last = time.thread_time_ns()

    def step(self) -> None:
        self.steps += 1

    @property
    def order(self) -> str:
        """The phases in the loop's order, comma-separated (``info.extra["phases"]``: a protobuf map keeps no order)."""
        return ",".join(self._ns)

    def as_metrics(self) -> dict[str, float]:
        """``cpu_us.<phase>``: mean microseconds of the thread's CPU per step, in the loop's order."""
        if not self.steps:
            return {}
        return {f"{PREFIX}{phase}": ns / self.steps / 1e3 for phase, ns in self._ns.items()}


class _NoPhases(PhaseClock):
    """Marks that cost a method call and measure nothing (the default)."""

    def __init__(self) -> None:
        self._ns = {}
        self._last = 0
        self.steps = 0

    def mark(self, phase: str) -> None:
        pass

    def skip(self) -> None:
        pass

    def step(self) -> None:
        pass


def phase_clock(on: bool, order: Sequence[str] = ()) -> PhaseClock:
    """A clock that measures when ``on`` (phases named in ``order``), else one whose marks do nothing."""
    return PhaseClock(order) if on else _NoPhases()


def phases_of(info: services_pb2.NodeInfo) -> dict[str, float]:
    """A node's ``cpu_us.<phase>`` figures (us per step) by phase, in its loop's order (``extra["phases"]``)."""
    order = [name for name in info.extra.get("phases", "").split(",") if name]
    return {name: info.metrics[PREFIX + name] for name in order if PREFIX + name in info.metrics}


def phases_text(phases: Mapping[str, float]) -> str:
    """``wait 30 + receive 45 + ... = 222 us``: the phases and their sum (the thread's CPU per step)."""
    parts = " + ".join(f"{name} {value:.0f}" for name, value in phases.items())
    return f"{parts} = {sum(phases.values()):.0f} us"
