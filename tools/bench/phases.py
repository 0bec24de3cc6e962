"""One line per node of where its CPU per step goes, from a run with ``--phases`` (bus/phases.py)."""

from __future__ import annotations

from collections.abc import Mapping

from schemas import services_pb2

PREFIX = "cpu_us."


def phases_of(info: services_pb2.NodeInfo) -> dict[str, float]:
    """The node's ``cpu_us.<phase>`` figures (us per step), by phase, in the loop's order."""
    order = [name for name in info.extra.get("phases", "").split(",") if name]
    return {name: info.metrics[PREFIX + name] for name in order if PREFIX + name in info.metrics}


def phase_line(label: str, phases: Mapping[str, float], process_cpu_us: float) -> str:
    """``label: wait 30 + receive 45 + ... = 222 us of the main thread, of 290 us/step (the rest: ...)``.

    The process's CPU per step beside the main thread's sum shows what the
    marks cannot see: ZMQ's I/O thread, which moves every message in and out.
    """
    if not phases:
        return f"  {label}: no phase figures (the node did not take a step with --phases)"
    parts = " + ".join(f"{name} {value:.0f}" for name, value in phases.items())
    main = sum(phases.values())
    return (f"  {label}: {parts} = {main:.0f} us main thread, of {process_cpu_us:.0f} us/step for the process "
            f"({process_cpu_us - main:.0f} us: ZMQ's I/O thread)")
