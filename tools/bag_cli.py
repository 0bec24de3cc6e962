"""``hil bag``: record the bus into MCAP files and work with them afterwards.

The commands import mcap, matplotlib and onnxruntime inside their bodies so
``hil --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tools.options import endpoint_options, load_endpoints


@click.group()
def bag() -> None:
    """Record runs into MCAP bags; inspect, plot, export and replay them.

    \b
    Example:
      hil bag record -o run.mcap --meta scenario=reach --run-dir /tmp/run1
      hil bag info run.mcap
    """


def _split_topics(values: tuple[str, ...]) -> tuple[str, ...]:
    """--topics may be repeated and/or comma-separated."""
    return tuple(t for v in values for t in v.split(",") if t)


@bag.command()
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The MCAP file to write (its folder must exist).")
@click.option("--topics", multiple=True, help="Record only these topics (repeat or comma-separate) [default: all].")
@click.option("--meta", multiple=True, metavar="KEY=VALUE",
              help="Provenance for the 'roarm-hil' metadata record (scenario, policy_sha256, seed, ...).")
@click.option("--meta-json", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="A flat JSON object of provenance; --meta pairs win over it.")
@click.option("--flush-interval", type=click.FloatRange(min=0.01), default=0.5, show_default=True,
              help="Seconds between chunk flushes: what a SIGKILL can lose at most.")
@click.option("--name", default="recorder", show_default=True, help="Node name on the bus.")
@endpoint_options
def record(output: Path, topics: tuple[str, ...], meta: tuple[str, ...], meta_json: Path | None,
           flush_interval: float, name: str, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Record every bus topic of a run into an MCAP bag until Ctrl-C, SIGTERM or `shutdown`.

    Answers ping/info/shutdown as role "recorder". Each (topic, sender) becomes
    a channel with its protobuf schema embedded; seq gaps are counted as drops.

    \b
    Example:
      hil bag record -o /tmp/run1/run.mcap --run-dir /tmp/run1 \\
          --meta scenario=reach --meta seed=3
    """
    from tools.bag.provenance import ProvenanceError, parse_meta, provenance
    from tools.bag.recorder import RecorderConfig
    from tools.bag.recorder import record as run_recorder
    from tools.bag.writer import BagWriteError, WriterConfig

    endpoints = load_endpoints(run_dir, endpoints_file)
    try:
        facts = provenance(parse_meta(meta, meta_json))
    except ProvenanceError as exc:
        raise click.UsageError(str(exc)) from None
    config = RecorderConfig(output, endpoints, facts, _split_topics(topics), name,
                            WriterConfig(flush_interval_s=flush_interval))
    try:
        result = run_recorder(config)
    except BagWriteError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"recorded {result.received} messages into {output} ({result.dropped} dropped); "
               f"stopped: {result.stop_reason}", err=True)
    for stream, counts in result.streams.items():
        if counts["dropped"]:
            click.echo(f"  {stream}: {counts['dropped']} dropped of {counts['count'] + counts['dropped']}", err=True)
    if result.error:
        raise click.ClickException(result.error)


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def info(bag_file: Path, as_json: bool) -> None:
    """Show topics, counts, rates, duration, dropped messages and provenance of a bag.

    Works on bags cut short by a crash or SIGKILL (it says so).

    \b
    Example:
      hil bag info run.mcap
    """
    from tools.bag.info import bag_info, format_info
    from tools.bag.reader import BagReadError

    try:
        report = bag_info(bag_file)
    except BagReadError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else format_info(report))


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="PNG to write [default: the bag's name with .png].")
@click.option("--title", default=None, help="Figure title [default: the bag's file name].")
def plot(bag_file: Path, output: Path | None, title: str | None) -> None:
    """Plot commanded vs measured joints, distance to goal and loop latency into a PNG.

    \b
    Example:
      hil bag plot run.mcap -o run.png
    """
    from tools.bag.plot import PlotError, plot_bag
    from tools.bag.reader import BagReadError

    output = output or bag_file.with_suffix(".png")
    try:
        series = plot_bag(bag_file, output, title)
    except (BagReadError, PlotError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {output}: {len(series.state_t)} states, {len(series.command_t)} commands, "
               f"{len(series.goal_changes)} goals")


@bag.command()
@click.argument("bag_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--csv", "csv_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder for the CSV files (created if missing), one per topic.")
@click.option("--topics", multiple=True, help="Only these topics (repeat or comma-separate) [default: all].")
def export(bag_file: Path, csv_dir: Path, topics: tuple[str, ...]) -> None:
    """Export a bag as one CSV per topic, fields flattened (position.0, tcp.x, ...).

    \b
    Example:
      hil bag export run.mcap --csv run_csv/
    """
    from tools.bag.export import export_csv
    from tools.bag.reader import BagReadError

    try:
        written = export_csv(bag_file, csv_dir, _split_topics(topics))
    except BagReadError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write CSV files into {csv_dir}: {exc.strerror or exc}") from None
    if not written:
        raise click.ClickException(f"no messages{' on ' + ', '.join(topics) if topics else ''} in {bag_file}")
    for topic, (path, count) in written.items():
        click.echo(f"{topic}: {count} rows -> {path}")
