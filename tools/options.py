"""Command-line options every ``hil`` command that talks to a run shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bus.endpoints import EndpointError, Endpoints, resolve

F = Callable[..., Any]


def endpoint_options(func: F) -> F:
    """Add ``--run-dir`` and ``--endpoints`` to a command."""
    func = click.option(
        "--endpoints",
        "endpoints_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Endpoints description (JSON) for nodes on several machines; overrides --run-dir.",
    )(func)
    func = click.option(
        "--run-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        envvar="HIL_RUN_DIR",
        help="Run folder holding endpoints.json and the ipc sockets "
        "[default: $HIL_RUN_DIR or <tmp>/roarm-hil-<uid>/default].",
    )(func)
    return func


def load_endpoints(run_dir: Path | None, endpoints_file: Path | None) -> Endpoints:
    """The run's endpoints, or a usage error that says what is wrong."""
    try:
        return resolve(run_dir, endpoints_file)
    except EndpointError as exc:
        raise click.UsageError(str(exc)) from None
