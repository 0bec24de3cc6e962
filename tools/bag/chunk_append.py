"""Message records written straight into the ``mcap`` writer's open chunk.

Why: ``mcap.writer.Writer.add_message`` is pure Python and, per message,
builds a dataclass, makes six ``struct.pack`` calls, seeks back to patch
the record length, and updates two sets of statistics: 5-9 us a message,
a fifth of the recorder's CPU on a lockstep run (issue 18's profile). The
record itself is one fixed 31-byte header and the payload. ``ChunkAppender``
packs the header in one call and keeps the writer's bookkeeping (chunk
message index, start/end times, statistics, chunk size limit) exactly as
``add_message`` would (and writes each chunk's message index with one
``struct.pack``): a bag written this way is byte for byte the bag
``add_message`` writes (tests/test_bag_chunk_append.py checks it, and that
mcap's reader reads it).

That bookkeeping is the ``mcap`` package's private state, so the appender
checks its shape when it starts and says ``None`` when the installed
version differs; the writer then keeps calling ``add_message``.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from io import BytesIO
from itertools import chain
from typing import Any, Callable

from mcap.records import MessageIndex
from mcap.writer import Writer

# opcode 0x05, record length, channel id, sequence, log time, publish time (MCAP spec, Message record)
_MESSAGE = struct.Struct("<BQHIQQ")
_MESSAGE_FIELDS = 2 + 4 + 8 + 8  # what the record length counts before the data
_OPCODE_MESSAGE = 0x05
_OPCODE_MESSAGE_INDEX = 0x07


class _MessageIndex(MessageIndex):
    """The chunk's index of one channel, written with one ``struct.pack`` for all its entries
    (the package's ``write`` makes two calls per message: 1 us a message when the chunk closes)."""

    def write(self, stream: Any) -> None:
        records = self.records
        stream.write(struct.pack(f"<BQHI{2 * len(records)}Q", _OPCODE_MESSAGE_INDEX, 6 + 16 * len(records),
                                 self.channel_id, 16 * len(records), *chain.from_iterable(records)))


class ChunkAppender:
    """``append(channel_id, log_time, data, publish_time, sequence)``: the same effect as the
    writer's ``add_message`` with chunking on, at a third of the cost."""

    def __init__(self, chunk: Any, statistics: Any, chunk_size: int, finalize_if_due: Callable[[], None]) -> None:
        self._chunk = chunk
        self._stats = statistics
        self._counts = statistics.channel_message_counts
        self._indices = chunk.message_indices
        self._chunk_size = chunk_size
        self._finalize_if_due = finalize_if_due

    @classmethod
    def attach(cls, writer: Writer) -> ChunkAppender | None:
        """An appender for ``writer`` (started, chunked), or None when its private state is not
        the shape this was written for (another ``mcap`` version)."""
        chunk = getattr(writer, "_Writer__chunk_builder", None)
        stats = getattr(writer, "_Writer__statistics", None)
        chunk_size = getattr(writer, "_Writer__chunk_size", None)
        finalize = getattr(writer, "_Writer__maybe_finalize_chunk", None)
        record_writer = getattr(chunk, "record_writer", None)
        shaped = (
            isinstance(getattr(record_writer, "_buffer", None), BytesIO)
            and isinstance(getattr(chunk, "message_indices", None), dict)
            and all(isinstance(getattr(chunk, name, None), int)
                    for name in ("num_messages", "message_start_time", "message_end_time"))
            and all(isinstance(getattr(stats, name, None), int)
                    for name in ("message_count", "message_start_time", "message_end_time"))
            and isinstance(getattr(stats, "channel_message_counts", None), defaultdict)
            and isinstance(chunk_size, int) and callable(finalize)
        )
        return cls(chunk, stats, chunk_size, finalize) if shaped else None

    def append(self, channel_id: int, log_time: int, data: bytes, publish_time: int, sequence: int) -> None:
        stats, chunk = self._stats, self._chunk
        # the file's statistics, as add_message keeps them
        if stats.message_count:
            if log_time < stats.message_start_time:
                stats.message_start_time = log_time
        else:
            stats.message_start_time = log_time
        if log_time > stats.message_end_time:
            stats.message_end_time = log_time
        self._counts[channel_id] += 1
        stats.message_count += 1
        # the open chunk's times and message index, as ChunkBuilder.add_message keeps them
        if chunk.num_messages:
            if log_time < chunk.message_start_time:
                chunk.message_start_time = log_time
        else:
            chunk.message_start_time = log_time
        if log_time > chunk.message_end_time:
            chunk.message_end_time = log_time
        buffer = chunk.record_writer._buffer  # a fresh BytesIO after each finished chunk
        offset = buffer.tell()
        index = self._indices.get(channel_id)
        if index is None:
            index = self._indices[channel_id] = _MessageIndex(channel_id=channel_id, records=[])
        index.records.append((log_time, offset))
        chunk.num_messages += 1
        buffer.write(_MESSAGE.pack(_OPCODE_MESSAGE, _MESSAGE_FIELDS + len(data), channel_id, sequence, log_time,
                                   publish_time))
        buffer.write(data)
        if offset + _MESSAGE.size + len(data) > self._chunk_size:
            self._finalize_if_due()
