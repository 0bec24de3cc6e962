"""The one root of every roarm-hil error, so a command maps any of them to an exit status."""

from __future__ import annotations


class HilError(Exception):
    """Root of every roarm-hil error; ``exit_code``: 0 pass, 1 fail, 2 broken set-up, 130 interrupted."""

    exit_code: int = 2
