"""A plain-text table whose long cells wrap onto more lines instead of being cut.

A reviewer must be able to read a whole failure reason in a terminal or a CI
log; cutting at a fixed width loses the end (``(or robot.port in t``).
Cells wrap at spaces only: a word longer than its column widens the column.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence


def wrap_cell(text: str, width: int | None) -> list[str]:
    """``text`` as lines of at most ``width`` characters, broken between words; [""] when empty."""
    lines: list[str] = []
    for paragraph in str(text).splitlines() or [""]:
        if width is None or len(paragraph) <= width:
            lines.append(paragraph)
            continue
        lines.extend(textwrap.wrap(paragraph, width, break_long_words=False, break_on_hyphens=False) or [""])
    return lines


def wrapped_table(rows: Sequence[Sequence[object]], header: Sequence[str],
                  max_widths: Sequence[int | None] | None = None, gap: str = "  ") -> str:
    """Columns padded to their widest line; ``max_widths[i]`` (None or absent: no limit) wraps column i."""
    limits = [*(max_widths or []), *[None] * len(header)][:len(header)]  # unnamed columns: no limit
    cells = [[wrap_cell(str(c), limits[i]) for i, c in enumerate(row)] for row in [header, *rows]]
    widths = [max(len(line) for row in cells for line in row[i]) for i in range(len(header))]
    out: list[str] = []
    for n, row in enumerate(cells):
        for k in range(max(len(c) for c in row)):
            parts = [(c[k] if k < len(c) else "").ljust(w) for c, w in zip(row, widths)]
            out.append(gap.join(parts).rstrip())
        if n == 0:
            out.append(gap.join("-" * w for w in widths))
    return "\n".join(out)
