"""Typed readers over parsed YAML that collect ``file:line: field: problem`` errors.

Scenarios and policy descriptions are written by hand; one run of a loader
should list every mistake in the file, each with where to look and how to
fix it, not stop at the first. So each reader returns a usable default when
the value is wrong and validation goes on. A Source without lines (a policy
description built from ONNX metadata) gives errors that name the source and
the field only.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from typing import Any

from bus.yamlsource import Source, child

MISSING: Any = object()

_NUMERIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def shown(value: Any) -> str:
    """A value as a user would recognise it in their file."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def as_number(value: Any) -> float | None:
    """A finite number, or None. ``1e-6`` counts: PyYAML (YAML 1.1) reads it as a string, not a float,
    and it is how Python and numpy print small numbers, so people paste it."""
    if isinstance(value, str) and _NUMERIC.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class Fields:
    """Collects errors against one Source; ``errors`` is the list of messages."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.errors: list[str] = [f"{source.file}:{line}: {path}: {text}" for line, path, text in source.problems]

    def error(self, path: str, text: str) -> None:
        where = f"{self.source.file}:{self.source.line(path)}" if self.source.lines else self.source.file
        self.errors.append(f"{where}: {path or '(top)'}: {text}")

    # -- containers -------------------------------------------------------------
    def mapping(self, path: str, value: Any, known: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
        """A mapping with only ``known`` keys; an unknown key gets a did-you-mean."""
        if value is MISSING or value is None:
            value = {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping of fields, got {shown(value)}")
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
            self.error(path, f"expected a list, got {shown(value)}")
            return []
        return value

    # -- scalars ----------------------------------------------------------------
    def number(self, path: str, value: Any, default: Any, *, gt: float | None = None, ge: float | None = None,
               le: float | None = None, lt: float | None = None) -> Any:
        """A finite number within the bounds given, else ``default`` (and an error)."""
        if value is MISSING:
            return default
        bound = (f" > {gt:g}" if gt is not None else "") + (f" >= {ge:g}" if ge is not None else "") + (
            f" and <= {le:g}" if le is not None else "") + (f" and < {lt:g}" if lt is not None else "")
        number = as_number(value)
        if number is None:
            self.error(path, f"expected a number{bound}, got {shown(value)}")
            return default
        if (gt is not None and not number > gt) or (ge is not None and not number >= ge) or (
                le is not None and not number <= le) or (lt is not None and not number < lt):
            self.error(path, f"expected a number{bound}, got {value!r}")
            return default
        return number

    def integer(self, path: str, value: Any, default: int, *, ge: int = 0) -> int:
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < ge:
            self.error(path, f"expected a whole number >= {ge}, got {shown(value)}")
            return default
        return value

    def boolean(self, path: str, value: Any, default: bool) -> bool:
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {shown(value)}")
            return default
        return value

    def string(self, path: str, value: Any, default: str | None = None) -> str | None:
        if value is MISSING:
            return default
        if not isinstance(value, str) or not value:
            self.error(path, f"expected a non-empty string, got {shown(value)}")
            return default
        return value

    def choice(self, path: str, value: Any, options: Iterable[str], default: str,
               aliases: dict[str, str] | None = None) -> str:
        options = list(options)
        if value is MISSING or value is None:
            return default
        if aliases and value in aliases:
            return aliases[value]
        if value not in options:
            close = difflib.get_close_matches(str(value), options, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.error(path, f"expected one of {', '.join(options)}, got {shown(value)}{hint}")
            return default
        return str(value)

    def strings(self, path: str, value: Any, *, names: bool = False) -> tuple[str, ...]:
        """A list of strings; numbers count as their text unless ``names`` (then only non-empty strings)."""
        out = []
        for i, item in enumerate(self.sequence(path, value)):
            if isinstance(item, str) and item:
                out.append(item)
            elif not names and isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append(str(item))
            else:
                self.error(child(path, i), f"expected {'a name' if names else 'a string'}, got {shown(item)}")
        return tuple(out)

    def numbers(self, path: str, value: Any, size: int | None = None, what: str = "numbers") -> tuple[float, ...] | None:
        """A list of finite numbers (exactly ``size`` of them when given)."""
        if not isinstance(value, list):
            want = f"a list of {size} {what}" if size is not None else f"a list of {what}"
            self.error(path, f"expected {want}, got {shown(value)}")
            return None
        if size is not None and len(value) != size:
            self.error(path, f"expected {size} {what}, got {len(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            number = as_number(item)
            if number is None:
                self.error(child(path, i), f"expected a number, got {shown(item)}")
                return None
            out.append(number)
        return tuple(out)

    def per_item(self, path: str, value: Any, size: int, default: float | None, what: str) -> tuple[float, ...] | None:
        """One number for all ``size`` items, or a list of exactly ``size`` (one per {what})."""
        if value is MISSING or value is None:
            return None if default is None else (default,) * size
        single = as_number(value)
        if single is not None:
            return (single,) * size
        if isinstance(value, list):
            if len(value) != size:
                self.error(path, f"has {len(value)} values for {size} {what}: give one number, or one per {what.rstrip('s')}")
                return None
            return self.numbers(path, value, size)
        self.error(path, f"expected a number or a list of {size} numbers (one per {what.rstrip('s')}), got {shown(value)}")
        return None

    def interval(self, path: str, value: Any) -> tuple[float, float] | None:
        """``[low, high]`` with low < high, or one number c meaning ``[-c, c]``."""
        if value is MISSING or value is None:
            return None
        single = as_number(value)
        if single is not None:
            if single <= 0:
                self.error(path, f"a single number means [-c, c] and must be > 0, got {value!r}")
                return None
            return (-single, single)
        pair = self.numbers(path, value, 2) if isinstance(value, list) else None
        if not isinstance(value, list):
            self.error(path, f"expected [low, high] or one number c for [-c, c], got {shown(value)}")
        if pair is None:
            return None
        if not pair[0] < pair[1]:
            self.error(path, f"low {pair[0]:g} must be below high {pair[1]:g}")
            return None
        return pair
