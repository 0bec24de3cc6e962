"""Pinning a node to CPUs (``--cpus``): the lockstep loop on one core, a control loop on a core of its own.

A lockstep loop is sequential: the robot waits for the policy, the policy
for the robot. Left to the scheduler, the two processes (and the ZMQ I/O
thread of each) wake each other across cores, and such a wake-up is usually an
inter-processor interrupt (on a virtual machine, an exit to the hypervisor)
on a core whose caches hold the other process's data. On the 2-vCPU
machine of docs/benchmarks.md both nodes pinned to one core spent 30-50 %
less CPU per step and ran faster than unpinned. On a real bench the usual
practice applies: the control loop on a core nothing else uses.
"""

from __future__ import annotations

import os
from itertools import groupby

from bus.errors import HilError


class CpuSetError(HilError, ValueError):
    """A ``--cpus`` list that does not parse or names a CPU this process may not use."""


def parse_cpus(text: str) -> frozenset[int]:
    """``"1"``, ``"0,2"``, ``"0-3"`` or a mix -> the CPU numbers; each must be one this process may use."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise CpuSetError(f"{text!r} is not a CPU list: give numbers and ranges, e.g. 1 or 0,2 or 0-3") from None
        if first < 0 or last < first:
            raise CpuSetError(f"{part!r} in {text!r} is not a CPU range (0 <= first <= last)")
        cpus.update(range(first, last + 1))
    allowed = os.sched_getaffinity(0)
    outside = sorted(cpus - allowed)
    if outside:
        raise CpuSetError(f"CPU {', '.join(map(str, outside))} is not available to this process "
                          f"(available: {','.join(map(str, sorted(allowed)))})")
    return frozenset(cpus)


def cpu_list(cpus: frozenset[int] | set[int]) -> str:
    """The compact form ``parse_cpus`` reads: ``1``, ``0-3``, ``0,2-3`` (what a node says in ``info.extra.cpus``)."""
    parts = []
    for _offset, group in groupby(enumerate(sorted(cpus)), key=lambda pair: pair[1] - pair[0]):
        run = [cpu for _index, cpu in group]  # consecutive CPUs share cpu - index
        parts.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(parts)


def pin(cpus: frozenset[int] | None) -> None:
    """Run every thread of this process, and every thread started later, on ``cpus`` (None: leave as is).

    Threads already running (numpy's BLAS pool, started at import) are moved
    one by one; later ones inherit the calling thread's set. Call it before
    the node makes its first socket: ZMQ starts its I/O thread then, and
    that thread carries every message in and out.
    """
    if not cpus:
        return
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # no /proc: the calling thread (and what it starts) only
        threads = [0]
    for tid in threads:  # the calling thread among them: the threads it starts later inherit its set
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
