"""Counting dropped messages from gaps in the per-stream envelope sequence numbers.

Each sender numbers the messages of each topic from 0 (bus.envelope.Encoder),
so a gap between consecutive numbers of one (sender, topic) stream is a
message that was published but never reached the recorder. The same counter
runs live in the recorder and offline over a bag (``hil bag info``), so a
bag cut short by SIGKILL still reports its drops.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StreamCount:
    """What arrived from one (sender, topic) stream."""

    count: int = 0
    first_seq: int = -1
    last_seq: int = -1
    dropped: int = 0
    # The sender started numbering again (it was restarted): not a drop.
    restarts: int = 0

    def observe(self, seq: int) -> int:
        """Account for one message; returns how many were lost just before it."""
        gap = 0
        if self.count == 0:
            # A late start (slow joiner) is not a drop: nothing before it was ours.
            self.first_seq = seq
        elif seq > self.last_seq + 1:
            gap = seq - self.last_seq - 1
            self.dropped += gap
        elif seq <= self.last_seq:
            self.restarts += 1
        self.last_seq = seq
        self.count += 1
        return gap

    def as_dict(self) -> dict[str, int]:
        return {
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "dropped": self.dropped,
            "restarts": self.restarts,
        }


class DropCounter:
    """StreamCounts keyed by (topic, sender)."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, str], StreamCount] = {}

    def observe(self, topic: str, src: str, seq: int) -> int:
        return self.stream(topic, src).observe(seq)

    def stream(self, topic: str, src: str) -> StreamCount:
        """The counter of one (topic, sender) stream, made on first sight."""
        stream = self.streams.get((topic, src))
        if stream is None:
            stream = self.streams[(topic, src)] = StreamCount()
        return stream

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.streams.values())

    @property
    def received(self) -> int:
        return sum(s.count for s in self.streams.values())
