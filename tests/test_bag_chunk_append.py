"""The recorder's direct chunk writes (tools/bag/chunk_append.py) make the very
file ``mcap``'s own ``add_message`` makes: the same messages through both,
byte for byte, read back by mcap's reader (with CRC checks) and by the
independent reader of tests/test_bag_scene.py's kind (plain protobuf classes
from the bag's schemas, via a real recorded run there)."""

from __future__ import annotations

import random
from io import BytesIO
from pathlib import Path

from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from tools.bag.chunk_append import ChunkAppender
from tools.bag.writer import BagWriter


def _messages(seed: int, count: int) -> list[tuple[int, int, bytes, int, int]]:
    """(channel, log time, data, publish time, sequence): several channels, times a little out of
    order (a batch sorted by send stamps), payloads of every size up to beyond a small chunk."""
    rng = random.Random(seed)
    out = []
    t = 1_000_000_000
    for k in range(count):
        t += rng.randrange(-20_000, 2_000_000)
        size = rng.choice([0, 1, 64, 248, 1_000, rng.randrange(0, 9_000)])
        out.append((rng.randrange(1, 5), t, rng.randbytes(size), t - rng.randrange(0, 50_000), k & 0xFFFFFFFF))
    return out


def _bag(messages: list[tuple[int, int, bytes, int, int]], direct: bool, compression: CompressionType) -> bytes:
    out = BytesIO()
    writer = Writer(out, chunk_size=16_384, compression=compression)
    writer.start(profile="", library="test")
    schema = writer.register_schema("s", "protobuf", b"\x01\x02")
    for channel in range(1, 5):
        assert writer.register_channel(f"topic/{channel}", "protobuf", schema, {"k": str(channel)}) == channel
    appender = ChunkAppender.attach(writer)
    assert appender is not None  # the installed mcap has the shape the appender was written for
    add = appender.append if direct else writer.add_message
    for i, (channel, log_time, data, publish_time, sequence) in enumerate(messages):
        add(channel, log_time, data, publish_time, sequence)
        if i % 97 == 0:
            writer.flush()  # the recorder's periodic flush: a chunk finished mid-stream
    writer.finish()
    return out.getvalue()


def test_direct_writes_make_the_same_file_as_add_message() -> None:
    for seed, compression in [(1, CompressionType.ZSTD), (2, CompressionType.NONE), (3, CompressionType.LZ4)]:
        messages = _messages(seed, 700)
        direct = _bag(messages, True, compression)
        assert direct == _bag(messages, False, compression)
        reader = make_reader(BytesIO(direct), validate_crcs=True)
        read = [(m.channel_id, m.log_time, m.data, m.publish_time, m.sequence)
                for _s, _c, m in reader.iter_messages(log_time_order=False)]
        assert read == messages
        summary = make_reader(BytesIO(direct)).get_summary()
        assert summary is not None and summary.statistics is not None
        assert summary.statistics.message_count == len(messages)
        assert summary.statistics.message_start_time == min(m[1] for m in messages)
        assert len(summary.chunk_indexes) > 7  # many chunks: size limit and flushes both finished some


def test_a_writer_without_chunks_keeps_add_message() -> None:
    writer = Writer(BytesIO(), use_chunking=False)
    writer.start(profile="", library="test")
    assert ChunkAppender.attach(writer) is None


def test_the_bag_writer_writes_through_the_appender(tmp_path: Path) -> None:
    bag = BagWriter(tmp_path / "a.mcap", {"scenario": "test"})
    assert getattr(bag._add_message, "__self__", None).__class__ is ChunkAppender
    bag.close()
