"""A single status line on stderr while a run goes (rewritten in place on a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Status:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, period_s: float = 0.1) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.period_s = period_s
        self._next = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        """Rewrite the line on a terminal (at most every ``period_s``); silent otherwise."""
        if not self.tty:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.period_s
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def note(self, text: str) -> None:
        """A line that stays: phases and milestones, on a terminal or in a log."""
        if not self.enabled:
            return
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
