"""Scenario validation errors: the readers of bus/fields.py, raised as one ScenarioError.

Each reader returns a usable value even when the input is wrong (a default),
so validation goes on and one run of ``hil run`` lists every mistake of a
file instead of the first one only.
"""

from __future__ import annotations

from bus.errors import HilError
from bus.fields import MISSING, Fields

__all__ = ["MISSING", "Checker", "ScenarioError"]


class ScenarioError(HilError, ValueError):
    """A scenario that cannot run; each line names file, line and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _line_of(error: str) -> int:
    """Errors are listed in file order: ``file:LINE: ...``."""
    parts = error.split(":", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


class Checker(Fields):
    """The readers of bus/fields.py, ending in one ScenarioError that lists every problem in file order."""

    def raise_if_any(self) -> None:
        if self.errors:
            raise ScenarioError(sorted(self.errors, key=_line_of))
