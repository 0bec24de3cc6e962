"""``hil bench``: benchmarks that print figures beside a baseline taken in the same run."""

from __future__ import annotations

import click


@click.group()
def bench() -> None:
    """Measure speed; every figure is printed beside a baseline from the same run.

    \b
    Example:
      hil bench bus
    """
