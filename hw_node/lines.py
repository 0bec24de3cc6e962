"""Cutting a serial byte stream into lines, in bounded memory.

The arm ends its lines in ``\\r\\n`` and may print anything between them
(boot text, half a line after a reconnect, binary garbage from a glitch). A
run of bytes without a newline must not grow the buffer without end: past
``max_line`` bytes the partial line is dropped and counted, and everything up
to the next newline is discarded with it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LineStats:
    lines: int = 0
    overlong: int = 0  # partial lines dropped for exceeding max_line
    dropped_bytes: int = 0


class LineBuffer:
    def __init__(self, max_line: int = 2048) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False  # inside an overlong line: skip to the next newline
        self.stats = LineStats()

    def feed(self, data: bytes) -> list[bytes]:
        """Complete lines found in ``data`` (without ``\\r\\n``), oldest first."""
        out: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            if self._discarding:
                self.stats.dropped_bytes += len(piece) + 1
                self._discarding = False
            elif len(self._buf) + len(piece) > self.max_line:
                self.stats.overlong += 1
                self.stats.dropped_bytes += len(self._buf) + len(piece) + 1
                self._buf.clear()
            else:
                self._buf += piece
                out.append(bytes(self._buf).rstrip(b"\r"))
                self.stats.lines += 1
                self._buf.clear()
            start = end + 1
        rest = data[start:]
        if self._discarding:
            self.stats.dropped_bytes += len(rest)
        elif len(self._buf) + len(rest) > self.max_line:
            self.stats.overlong += 1
            self.stats.dropped_bytes += len(self._buf) + len(rest)
            self._buf.clear()
            self._discarding = True
        else:
            self._buf += rest
        return out

    def clear(self) -> None:
        """Forget a partial line (after a reconnect it belongs to a dead stream)."""
        self._buf.clear()
        self._discarding = False

    @property
    def pending(self) -> int:
        return len(self._buf)
