"""Small typed readers for parsed YAML that collect errors with file, line and field.

Each reader returns a usable value even when the input is wrong (a default),
so validation goes on and one run of ``hil run`` lists every mistake of a
file instead of the first one only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

from bus.errors import HilError
from bus.yamlsource import Source, child


class ScenarioError(HilError, ValueError):
    """A scenario that cannot run; each line names file, line and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


MISSING = object()


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def _line_of(error: str) -> int:
    """Errors are listed in file order: ``file:LINE: ...``."""
    parts = error.split(":", 2)
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0


class Checker:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.errors: list[str] = [f"{source.file}:{line}: {path}: {text}" for line, path, text in source.problems]

    def error(self, path: str, text: str) -> None:
        self.errors.append(f"{self.source.file}:{self.source.line(path)}: {path or '(top)'}: {text}")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ScenarioError(sorted(self.errors, key=_line_of))

    # -- containers -------------------------------------------------------------
    def mapping(self, path: str, value: Any, known: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
        """A mapping with only ``known`` keys; unknown keys get a did-you-mean."""
        if value is MISSING or value is None:
            value = {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping of fields, got {_shown(value)}")
            return {}
        known = list(known)
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
                self.error(child(path, key), f"unknown field{hint}")
        for key in required:
            if key not in value:
                self.error(path, f"missing required field {key!r}")
        return value

    def sequence(self, path: str, value: Any) -> list[Any]:
        if value is MISSING or value is None:
            return []
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {_shown(value)}")
            return []
        return value

    # -- scalars ----------------------------------------------------------------
    def number(self, path: str, value: Any, default: float, *, gt: float | None = None,
               ge: float | None = None, le: float | None = None, lt: float | None = None) -> float:
        if value is MISSING:
            return default
        bound = (f" > {gt:g}" if gt is not None else "") + (f" >= {ge:g}" if ge is not None else "") + (
            f" and <= {le:g}" if le is not None else "") + (f" and < {lt:g}" if lt is not None else "")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.error(path, f"expected a number{bound}, got {_shown(value)}")
            return default
        if (gt is not None and not value > gt) or (ge is not None and not value >= ge) or (
                le is not None and not value <= le) or (lt is not None and not value < lt):
            self.error(path, f"expected a number{bound}, got {value!r}")
            return default
        return float(value)

    def integer(self, path: str, value: Any, default: int, *, ge: int = 0) -> int:
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < ge:
            self.error(path, f"expected a whole number >= {ge}, got {_shown(value)}")
            return default
        return value

    def boolean(self, path: str, value: Any, default: bool) -> bool:
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {_shown(value)}")
            return default
        return value

    def string(self, path: str, value: Any, default: str | None = None) -> str | None:
        if value is MISSING:
            return default
        if not isinstance(value, str) or not value:
            self.error(path, f"expected a non-empty string, got {_shown(value)}")
            return default
        return value

    def choice(self, path: str, value: Any, options: Iterable[str], default: str) -> str:
        options = list(options)
        if value is MISSING:
            return default
        if value not in options:
            self.error(path, f"expected one of {', '.join(options)}, got {_shown(value)}")
            return default
        return str(value)

    def strings(self, path: str, value: Any) -> tuple[str, ...]:
        items = self.sequence(path, value)
        out = []
        for i, item in enumerate(items):
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                out.append(str(item))
            else:
                self.error(child(path, i), f"expected a string, got {_shown(item)}")
        return tuple(out)

    def vector(self, path: str, value: Any, size: int) -> tuple[float, ...] | None:
        """Exactly ``size`` finite numbers."""
        if not isinstance(value, list):
            self.error(path, f"expected a list of {size} numbers, got {_shown(value)}")
            return None
        if len(value) != size:
            self.error(path, f"expected {size} numbers, got {len(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
                self.error(child(path, i), f"expected a number, got {_shown(item)}")
                return None
            out.append(float(item))
        return tuple(out)
