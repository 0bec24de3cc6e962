"""One line per node of where its CPU per step goes, from a run with ``--phases`` (bus/phases.py)."""

from __future__ import annotations

from collections.abc import Mapping

from bus.phases import phases_text


def phase_line(label: str, phases: Mapping[str, float], process_cpu_us: float) -> str:
    """``label: wait 30 + receive 45 + ... = 222 us main thread, of 290 us/step for the process (...)``.

    The process's CPU per step beside the main thread's sum shows what the
    marks cannot see: ZMQ's I/O thread, which moves every message in and out.
    """
    if not phases:
        return f"  {label}: no phase figures (the node did not take a step with --phases)"
    main = sum(phases.values())
    return (f"  {label}: {phases_text(phases)} main thread, of {process_cpu_us:.0f} us/step for the process "
            f"({process_cpu_us - main:.0f} us: ZMQ's I/O thread)")
