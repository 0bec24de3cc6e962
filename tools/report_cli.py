"""``hil report RUN_DIR``: rebuild report.html of a run or a sweep from its folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scenarios.run_page import write_run_page
from scenarios.sweep_page import SWEEP_FILE, SweepSummary, write_sweep_page
from scenarios.trace import TRACE_FILE, Trace, TraceError
from tools.bag.reader import BagReadError
from tools.bag.series import load_trace


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
def report(run_dir: Path) -> None:
    """Rebuild RUN_DIR/report.html from what the run left there.

    A run folder: report.json plus the run's trace (trace.json, else the bag
    run.mcap, else the page has no plots). A sweep folder: sweep.json plus
    each cell's report.json (each cell keeps its own page; rebuild one with
    `hil report SWEEP_DIR/<target>-seed<N>`).

    \b
    Examples:
      hil report runs/reach-mujoco-seed0-20250101-120000
      hil report runs/sweep-reach-20250101-120000
    """
    if (run_dir / "report.json").is_file():
        try:
            data = json.loads((run_dir / "report.json").read_text())
        except (OSError, ValueError) as exc:
            raise click.ClickException(f"cannot read {run_dir / 'report.json'}: {exc}") from None
        trace, source = None, "no trace: the page has no plots"
        try:
            if (run_dir / TRACE_FILE).is_file():
                trace, source = Trace.load(run_dir / TRACE_FILE), TRACE_FILE
            elif (run_dir / "run.mcap").is_file():
                trace, source = load_trace(run_dir / "run.mcap"), "run.mcap"
        except (TraceError, BagReadError) as exc:
            raise click.ClickException(str(exc)) from None
        page = write_run_page(data, trace, run_dir, save_trace=False)
    elif (run_dir / SWEEP_FILE).is_file():
        try:
            summary = SweepSummary.load(run_dir)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"cannot read {run_dir / SWEEP_FILE}: {exc}") from None
        page, source = write_sweep_page(summary, run_dir), f"{SWEEP_FILE} and {len(summary.cells)} cell(s)"
    else:
        raise click.ClickException(f"{run_dir} has neither report.json (a run) nor {SWEEP_FILE} (a sweep)")
    if page is None:
        raise click.ClickException(f"could not write {run_dir / 'report.html'}")
    click.echo(f"wrote {page} (from {source})")
