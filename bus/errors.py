"""The one root of every roarm-hil error, and the exit status it stands for.

Every exception class of the project derives from ``HilError`` (most also
from the stdlib class they were before, e.g. ``class SpecError(Failed,
ValueError)``, so ``except ValueError`` still catches them). The class
carries the exit status a command ends with when the error reaches the top
of ``hil`` (or of ``python -m sim_node`` / ``hw_node`` / ``policy_node``),
so every command maps errors the same way: one line on stderr
(``Error: <message>``), no traceback, and this status:

- 0 ``EXIT_PASS``: the command did what it was asked; a run passed.
- 1 ``EXIT_FAIL`` (``Failed``): the command ran and did not succeed: a run
  or check failed, a node did not answer, or what it was pointed at (a bag,
  a model, a backend) cannot be used.
- 2 ``EXIT_BROKEN`` (``HilError`` itself): broken set-up or usage: bad
  options or values, a scenario, endpoints file or fault spec that does
  not validate, a run that cannot start as described.
- 130 ``EXIT_INTERRUPTED`` (``Interrupted``): Ctrl-C or SIGTERM.

docs/contracts.md ("Exit status") lists which command exits with which.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_BROKEN = 2
EXIT_INTERRUPTED = 130


class HilError(Exception):
    """Root of every roarm-hil error; ``exit_code`` is the status a command ends with (2: broken set-up)."""

    exit_code: int = EXIT_BROKEN


class Failed(HilError):
    """The command ran and did not succeed, or what it works on cannot be used (exit 1)."""

    exit_code = EXIT_FAIL


class Interrupted(HilError):
    """Ctrl-C or SIGTERM stopped the command (exit 130)."""

    exit_code = EXIT_INTERRUPTED
