"""``hil view``: serve a run's live bus to Foxglove (WebSocket)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from bus.cli_options import endpoint_options, load_endpoints
from tools.viz.live import LiveView, ViewConfig, ViewError, serve


@click.command("view")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; anything but loopback also needs --insecure (the Foxglove protocol "
                   "has no authentication).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8765, show_default=True,
              help="WebSocket port (0: any free port, printed at start).")
@endpoint_options
def view(host: str, port: int, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Serve the live bus of a run to Foxglove: joint states and commands, link
    transforms, the URDF, goals and events (docs/foxglove.md).

    Open the printed URL, or in Foxglove: Open connection -> Foxglove WebSocket
    -> ws://127.0.0.1:8765. Stop with Ctrl-C.

    \b
    Examples:
      hil view --run-dir /tmp/run1
      hil view --port 0           # any free port (the run folder from $HIL_RUN_DIR)
    """
    import zmq

    endpoints = load_endpoints(run_dir, endpoints_file)
    stop: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop.append(signal.Signals(signum).name)

    ctx = zmq.Context()
    try:
        view_ = LiveView(ViewConfig(endpoints, host=host, port=port, insecure=endpoints.security.insecure), ctx)
    except ViewError as exc:
        ctx.destroy(linger=0)
        raise click.ClickException(str(exc)) from None
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    click.echo(f"serving the bus on ws://{host}:{view_.port}", err=True)
    click.echo(f"open in Foxglove: {view_.url()}", err=True)
    try:
        serve(view_, lambda: not stop)
    finally:
        view_.close()
        ctx.destroy(linger=0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"stopped ({stop[0] if stop else 'done'}): {view_.forwarded} bus messages forwarded", err=True)
    sys.exit(0)
