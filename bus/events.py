"""Rate-limited ``node/event`` reporting.

A flood of garbage must not turn into a flood of events: each event code is
reported at most once per interval, and the next report says how many were
suppressed in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from schemas import messages_pb2

Severity = int  # messages_pb2.Severity values


class EventLimiter:
    def __init__(self, node: str, send: Callable[[messages_pb2.Event], None], min_interval_s: float = 1.0) -> None:
        self.node = node
        self.send = send
        self.min_interval_s = min_interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def emit(self, severity: Severity, code: str, text: str, correlation_seq: int = 0) -> bool:
        """Publish the event unless its code fired less than an interval ago."""
        now = time.monotonic()
        last = self._last.get(code)
        if last is not None and now - last < self.min_interval_s:
            self._suppressed[code] = self._suppressed.get(code, 0) + 1
            return False
        self._last[code] = now
        event = messages_pb2.Event(
            stamp_ns=time.monotonic_ns(),
            severity=severity,  # type: ignore[arg-type]
            code=code,
            text=text,
            node=self.node,
            correlation_seq=correlation_seq,
            suppressed=self._suppressed.pop(code, 0),
        )
        self.send(event)
        return True
