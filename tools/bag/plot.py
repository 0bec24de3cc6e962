"""``hil bag plot``: one picture of how a recorded run went.

The drawing is ``scenarios.plots`` (the same code as the run's report.html)
fed with the bag read back as a trace (``tools.bag.series``): distance to
each goal on the robot's clock in mm with the tolerance band, commanded vs
measured joints (flat joints drawn flat), the latency histogram and the
events timeline. PNG, or SVG when the output ends in ``.svg``.
"""

from __future__ import annotations

from pathlib import Path

from scenarios.plots import PlotError, overview_figure, to_png, to_svg
from scenarios.trace import Trace
from tools.bag.series import load_trace

__all__ = ["PlotError", "plot_bag"]


def plot_bag(bag: Path, output: Path, title: str | None = None) -> Trace:
    """Draw the bag into ``output``; returns the trace it drew."""
    trace = load_trace(bag)
    if not trace.t:
        raise PlotError(f"{bag} has no robot/joint_state messages to plot")
    fig = overview_figure(trace, title or f"{bag.name}: on the robot's clock (sim_time)")
    try:
        if output.suffix.lower() == ".svg":
            output.write_text(to_svg(fig, salt=output.stem))
        else:
            output.write_bytes(to_png(fig))
    except OSError as exc:
        raise PlotError(f"cannot write {output}: {exc.strerror or exc}") from None
    return trace
