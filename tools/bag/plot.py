"""``hil bag plot``: one PNG that shows how a run went.

Panels: commanded vs measured position per joint, distance to the goal
(TCP metres or joint radians) with goal changes marked, and the loop latency
from each state to the command answering it. matplotlib's Agg backend, so it
works headless (CI, ssh).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bus.errors import Failed
from roarm.joints import NAMES
from tools.bag.series import Series, load_series


class PlotError(Failed, RuntimeError):
    """Nothing to plot, or the picture cannot be written."""


def plot_bag(bag: Path, output: Path, title: str | None = None) -> Series:
    """Draw the bag into ``output`` (PNG); returns the series it drew."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = load_series(bag)
    if not series.state_t and not series.command_t:
        raise PlotError(f"{bag} has no robot/joint_state or robot/joint_command messages to plot")
    names = series.joint_names or list(NAMES)
    fig, axes = plt.subplots(4, 2, figsize=(12, 11), sharex=True)
    state_q = np.asarray(series.state_q, dtype=float).reshape(len(series.state_t), -1)
    command_q = np.asarray(series.command_q, dtype=float).reshape(len(series.command_t), -1)
    for j, ax in enumerate(axes[:3].flat):
        if j >= len(names):
            ax.set_visible(False)
            continue
        if state_q.shape[1] > j:
            ax.plot(series.state_t, state_q[:, j], label="measured", lw=1.2)
        if command_q.shape[1] > j:
            ax.plot(series.command_t, command_q[:, j], label="commanded", lw=1.0, ls="--")
        ax.set_ylabel(f"{names[j]} (rad)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="best", fontsize=8)

    ax = axes[3, 0]
    kinds = np.asarray(series.goal_kind)
    for kind, unit in (("tcp", "m"), ("joints", "rad")):
        mask = kinds == kind
        if mask.any():
            ax.plot(np.asarray(series.goal_t)[mask], np.asarray(series.goal_distance)[mask], ".", ms=2,
                    label=f"{'TCP' if kind == 'tcp' else 'max joint'} distance ({unit})")
    for t, _goal_id in series.goal_changes:
        ax.axvline(t, color="grey", lw=0.6, alpha=0.6)
    ax.set_ylabel("distance to goal")
    ax.set_xlabel("time (s, sender stamps)")
    if series.goal_t:
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no goals recorded", transform=ax.transAxes, ha="center")
    ax.grid(alpha=0.3)

    ax = axes[3, 1]
    if series.latency_ms:
        ax.plot(series.latency_t, series.latency_ms, ".", ms=2)
        p50, p99 = np.percentile(series.latency_ms, [50, 99])
        ax.set_title(f"state -> command latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms", fontsize=9)
    else:
        ax.text(0.5, 0.5, "no commands matched to states", transform=ax.transAxes, ha="center")
    ax.set_ylabel("latency (ms)")
    ax.set_xlabel("time (s, sender stamps)")
    ax.grid(alpha=0.3)

    fig.suptitle(title or f"{bag.name}: commanded vs measured", fontsize=11)
    fig.tight_layout()
    try:
        fig.savefig(output, dpi=90)
    except OSError as exc:
        raise PlotError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return series
