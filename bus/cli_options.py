"""What every command line of the project shares: the run's options and how errors end a command.

- ``endpoint_options`` / ``load_endpoints``: ``--run-dir``, ``--endpoints``,
  ``--keys``, ``--insecure`` for every command that talks to a run;
  ``security_options`` / ``command_line_security``: ``--keys`` and
  ``--insecure`` alone (``hil run`` makes its own run folder);
- ``spin_option``: ``--spin`` for the nodes' loops (bus/waiting.py);
- ``HilCommand`` / ``HilGroup``: a ``HilError`` that reaches the top ends the
  command with ``Error: <message>`` on stderr and the error's exit status
  (bus/errors.py), Ctrl-C with 130; never a traceback.

The nodes' own command lines (``hil node sim``, ``python -m policy_node``, ...)
use them too, so they live below the node packages; the one place in ``bus``
that imports click.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bus.affinity import CpuSetError, parse_cpus
from bus.endpoints import EndpointError, Endpoints, resolve
from bus.errors import EXIT_INTERRUPTED, HilError
from bus.security import SecurityConfig
from bus.waiting import Waiting

# click's ctx.meta keys for --keys / --insecure (not passed to the command:
# load_endpoints applies them, so every command gets them without new arguments).
_KEYS = "hil.security.keys"
_INSECURE = "hil.security.insecure"


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value:
            ctx.meta[key] = value
        return value

    return store

F = Callable[..., Any]


def security_options(func: F) -> F:
    """Add ``--keys`` and ``--insecure`` to a command (``command_line_security`` reads them)."""
    func = click.option(
        "--insecure",
        is_flag=True,
        expose_value=False,
        callback=_remember(_INSECURE),
        help="Allow binding tcp:// on a non-loopback address WITHOUT authentication (prints a warning).",
    )(func)
    func = click.option(
        "--keys",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        envvar="HIL_KEYS",
        expose_value=False,
        callback=_remember(_KEYS),
        help="CURVE key folder from `hil keys generate` [$HIL_KEYS]: tcp:// sockets then accept only its keys.",
    )(func)
    return func


def endpoint_options(func: F) -> F:
    """Add ``--run-dir``, ``--endpoints``, ``--keys`` and ``--insecure`` to a command."""
    func = security_options(func)
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


def _spin_us(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    try:
        return Waiting.parse(value).spin_us
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def spin_option(func: F) -> F:
    """``--spin auto|off|MICROSECONDS`` as ``spin_us`` (bus/waiting.py): how a node's loop waits for its
    next message; ``auto`` spins only while the machine has cores to spare (judged once, at start)."""
    return click.option("--spin", "spin_us", default="auto", show_default=True, callback=_spin_us,
                        metavar="auto|off|US",
                        help="Look for the next message without blocking for up to this many microseconds "
                             "before blocking (a lockstep answer that comes while spinning costs no "
                             "wake-up); auto: 50 us when 2 cores are idle, else off.")(func)


def phases_option(func: F) -> F:
    """``--phases``: the node measures its loop's CPU time per phase (bus/phases.py) into ``info.metrics``."""
    return click.option("--phases", is_flag=True, default=False,
                        help="Measure the loop's CPU time per phase of a step (wait, receive, act, send, ...) "
                             "into info metrics cpu_us.* (hil bus info shows them; the sim node in lockstep); costs about "
                             "1 us per phase per step.")(func)


def _cpus(_ctx: click.Context, _param: click.Parameter, value: str | None) -> frozenset[int] | None:
    if value is None:
        return None
    try:
        return parse_cpus(value)
    except CpuSetError as exc:
        raise click.BadParameter(str(exc)) from None


def cpus_option(func: F) -> F:
    """``--cpus LIST`` as ``cpus`` (bus/affinity.py): the CPUs every thread of the node runs on."""
    return click.option("--cpus", default=None, callback=_cpus, metavar="LIST",
                        help="Run the node, every thread of it (ZMQ's I/O thread too), only on these CPUs (e.g. 1, 0,2, 0-3). "
                             "Both nodes of a lockstep loop on one core spend less CPU per step than "
                             "left to the scheduler (docs/benchmarks.md).")(func)


def command_line_security(default: SecurityConfig) -> SecurityConfig:
    """``default`` (an endpoints description's "security") with ``--keys`` /
    ``--insecure`` of the current command line applied over it."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    if _KEYS not in meta and _INSECURE not in meta:
        return default
    keys = meta.get(_KEYS, default.keys)
    return SecurityConfig(keys=Path(keys).resolve() if keys else None,
                          insecure=bool(meta.get(_INSECURE, default.insecure)))


def load_endpoints(run_dir: Path | None, endpoints_file: Path | None) -> Endpoints:
    """The run's endpoints, or a usage error that says what is wrong.

    ``--keys`` / ``--insecure`` given on the command line override the
    description's "security" field.
    """
    try:
        endpoints = resolve(run_dir, endpoints_file)
    except EndpointError as exc:
        raise click.UsageError(str(exc)) from None
    security = command_line_security(endpoints.security)
    if security != endpoints.security:
        endpoints = endpoints.with_security(security)
    return endpoints


def invoke_mapped(invoke: Callable[[click.Context], Any], ctx: click.Context) -> Any:
    """Run ``invoke(ctx)``; a HilError becomes its exit status, Ctrl-C becomes 130.

    Commands then let errors rise instead of each catching its own tuple of
    exception classes; a command that adds context to a message still may.
    """
    try:
        return invoke(ctx)
    except HilError as exc:
        out = click.ClickException(str(exc))  # click prints it as "Error: <message>" and exits with exit_code
        out.exit_code = exc.exit_code
        raise out from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        ctx.exit(EXIT_INTERRUPTED)


class HilCommand(click.Command):
    """A command that ends on a HilError with its exit status (for commands run on their own: python -m ...)."""

    def invoke(self, ctx: click.Context) -> Any:
        return invoke_mapped(super().invoke, ctx)


class HilGroup(click.Group):
    """A group whose commands all end on a HilError with its exit status (the ``hil`` root)."""

    def invoke(self, ctx: click.Context) -> Any:
        return invoke_mapped(super().invoke, ctx)
