"""The one root of roarm-hil's errors, so a command can turn any of them into its exit status."""

from __future__ import annotations


class HilError(Exception):
    """Root of every roarm-hil error; ``exit_code`` is what ``hil`` exits with (2: broken set-up)."""

    exit_code: int = 2
