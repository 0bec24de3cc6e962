"""Protobuf's wire format by hand, for the few messages built on a hot path.

A camera frame's head (bus/images.py) and the scene's link transforms
(tools/viz/scene.py) are written field by field instead of through message
objects: the fixed parts once, the changing numbers packed per message. This
is the one place that knows how protobuf lays out a varint, a
length-delimited field and a ``google.protobuf.Timestamp``.
"""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp


def varint(value: int) -> bytes:
    """A non-negative integer as a base-128 varint."""
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def length_prefix(field: int, size: int) -> bytes:
    """Tag and length of a length-delimited field (bytes, string, message) of ``size`` bytes."""
    return varint(field << 3 | 2) + varint(size)


def stamp(stamp_ns: int) -> Timestamp:
    return Timestamp(seconds=stamp_ns // 1_000_000_000, nanos=stamp_ns % 1_000_000_000)


def stamp_ns_of(timestamp: Timestamp) -> int:
    return timestamp.seconds * 1_000_000_000 + timestamp.nanos
