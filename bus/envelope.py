"""The three-frame envelope every bus message travels in: [topic, header, payload].

The header is a small msgpack map (seq, src, type, sent_ns, v, and ``step``
on camera frames: the robot step a frame belongs to) so generic tools can
route, time and count messages without decoding payloads; the payload is the
serialized protobuf message named by ``type``. Payload size limits are per
topic (bus/topics.py): control topics stay small, camera frames may be large.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import msgpack
from google.protobuf.message import DecodeError, Message

from bus import registry
from bus.errors import HilError
from bus.topics import spec
from schemas import SCHEMA_MAJOR, SCHEMA_MINOR

# Frames larger than this are dropped unread on topics outside the contract
# (topics of the contract have their own limit, bus/topics.py), and topic and
# header frames never come near it: a peer sending more is broken or hostile.
DEFAULT_MAX_FRAME = 1 << 20

_VERSION = (SCHEMA_MAJOR, SCHEMA_MINOR)
_TYPES = registry.TYPES

# The header this bus writes is always laid out the same way: the keys that
# are constant per sender and type first, then ``seq`` and ``sent_ns`` as
# msgpack uint64 (0xcf + 8 bytes). So a sender packs the constant part once
# and the two integers with one struct call, and a receiver that has checked
# a sender's constant part once reads the integers at fixed offsets. Other
# layouts (other implementations, key orders, integer widths) are valid too
# and take the general msgpack path.
_SEQ_KEY = b"\xa3seq"
_TAIL = struct.Struct(">BQ8sBQ")  # 0xcf seq, b"\xa7sent_ns", 0xcf sent_ns
_SENT_KEY = b"\xa7sent_ns"
_UINT64 = 0xCF
_TAIL_SIZE = _TAIL.size
_U64_MAX = (1 << 64) - 1
# Constant header parts a Decoder remembers; bounded so that a peer sending
# ever new source names cannot grow a node's memory (past it: the general path).
KNOWN_PREFIXES = 256


def header_prefix(src: str, type_name: str, version: tuple[int, int] = _VERSION) -> bytes:
    """The constant part of this bus's header for one sender and type, up to the ``seq`` value."""
    return (b"\x85" + msgpack.packb("src") + msgpack.packb(src) + msgpack.packb("type") + msgpack.packb(type_name)
            + msgpack.packb("v") + msgpack.packb(list(version)) + _SEQ_KEY)


class Reject(HilError):
    """A received message that must be dropped; ``reason`` is a counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Envelope:
    topic: str
    seq: int
    src: str
    type: str
    sent_ns: int
    version: tuple[int, int]
    payload: bytes
    message: Message | None = None
    recv_ns: int = 0
    # Camera frames: the robot step (JointState.seq) the frame belongs to; None when unknown.
    step: int | None = None


class Encoder:
    """Builds envelopes for one sender, numbering each topic's messages from 0.

    Sequence numbers are per topic so receivers can count gaps (drops) per
    stream.
    """

    def __init__(self, src: str) -> None:
        self.src = src
        self._seq: dict[str, int] = {}
        self._packer = msgpack.Packer()  # reused: packb() builds a Packer per call
        # Per topic: its encoded name; per message class and per type name: the header's constant part.
        self._topics: dict[str, bytes] = {}
        self._by_class: dict[type, bytes] = {}
        self._by_name: dict[str, bytes] = {}

    def next_seq(self, topic: str) -> int:
        seq = self._seq.get(topic, 0)
        self._seq[topic] = seq + 1
        return seq

    def encode(self, topic: str, message: Message, sent_ns: int | None = None) -> list[bytes]:
        prefix = self._by_class.get(type(message))
        if prefix is None:
            prefix = self._by_class[type(message)] = self._prefix(message.DESCRIPTOR.full_name)
        return self._frames(topic, prefix, message.SerializeToString(), sent_ns, None)

    def encode_raw(
        self,
        topic: str,
        type_name: str,
        payload: bytes | memoryview,
        sent_ns: int | None = None,
        seq: int | None = None,
        step: int | None = None,
    ) -> list[bytes | memoryview]:
        """Wrap an already serialized payload (replay, benchmarks, camera frames)."""
        if step is None:
            return self._frames(topic, self._prefix(type_name), payload, sent_ns, seq)
        # Camera frames carry ``step`` too: a rare, large message, so the
        # general msgpack map (its receiver takes the general path as well).
        fields = {
            "seq": self.next_seq(topic) if seq is None else seq,
            "src": self.src,
            "type": type_name,
            "sent_ns": time.monotonic_ns() if sent_ns is None else sent_ns,
            "v": _VERSION,
            "step": step,
        }
        return [self._topic(topic), self._packer.pack(fields), payload]

    def _prefix(self, type_name: str) -> bytes:
        prefix = self._by_name.get(type_name)
        if prefix is None:
            prefix = self._by_name[type_name] = header_prefix(self.src, type_name)
        return prefix

    def _topic(self, topic: str) -> bytes:
        topic_b = self._topics.get(topic)
        if topic_b is None:
            topic_b = self._topics[topic] = topic.encode()
        return topic_b

    def _frames(
        self, topic: str, prefix: bytes, payload: bytes | memoryview, sent_ns: int | None, seq: int | None
    ) -> list[bytes | memoryview]:
        topic_b = self._topic(topic)
        if seq is None:
            seq = self._seq.get(topic, 0)
            self._seq[topic] = seq + 1
        if sent_ns is None:
            sent_ns = time.monotonic_ns()
        if 0 <= seq <= _U64_MAX and 0 <= sent_ns <= _U64_MAX:
            header = prefix + _TAIL.pack(_UINT64, seq, _SENT_KEY, _UINT64, sent_ns)
        else:  # out of uint64 range: let msgpack pick (and refuse what it cannot pack)
            header = prefix + self._packer.pack(seq) + _SENT_KEY + self._packer.pack(sent_ns)
        return [topic_b, header, payload]


class Decoder:
    """Checks and decodes received envelopes (see ``decode``), faster for senders it has seen.

    The constant part of each header in this bus's own layout (everything but
    ``seq`` and ``sent_ns``) is checked once through the general path and
    remembered with what it said, so every later header from that sender and
    type costs a dictionary lookup and one struct unpack. Only byte-identical
    prefixes hit, and the fast path reads only msgpack uint64 integers (a float
    ``seq`` or ``sent_ns`` has another tag and takes the general path, which
    rejects it), so what is accepted and rejected is exactly what ``decode``
    accepts and rejects. A header with ``step`` (camera frames) is a map of six
    keys, never a remembered prefix. Each topic's payload limit (bus/topics.py)
    is looked up once and remembered the same way.
    """

    __slots__ = ("max_frame", "parse", "_known", "_topics")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, parse: bool = True) -> None:
        self.max_frame = max_frame
        self.parse = parse
        # prefix -> (src, type name, version, message class)
        self._known: dict[bytes, tuple[str, str, tuple[int, int], registry.MessageClass]] = {}
        # topic frame -> (topic, largest payload accepted on it)
        self._topics: dict[bytes, tuple[str, int]] = {}

    def decode(self, frames: list[bytes]) -> Envelope:
        if len(frames) != 3:
            raise Reject("frame_count", f"expected 3 frames, got {len(frames)}")
        topic_b, header_b, payload = frames
        max_frame = self.max_frame
        if len(header_b) > max_frame or len(topic_b) > max_frame:
            raise Reject("oversize", f"frame of {max(len(topic_b), len(header_b))} bytes exceeds {max_frame}")
        cut = len(header_b) - _TAIL_SIZE
        known = self._known.get(header_b[:cut]) if cut > 0 and type(header_b) is bytes else None  # noqa: E721
        if known is not None:
            tag, seq, key, tag2, sent_ns = _TAIL.unpack_from(header_b, cut)
            if tag == _UINT64 and tag2 == _UINT64 and key == _SENT_KEY:
                topic_entry = self._topics.get(topic_b)
                if topic_entry is None:
                    topic_entry = self._topic(topic_b)
                topic, limit = topic_entry
                if len(payload) > limit:
                    raise Reject("oversize", f"{topic}: payload of {len(payload)} bytes exceeds {limit}")
                src, type_name, version, cls = known
                envelope = Envelope(topic, seq, src, type_name, sent_ns, version, payload)
                if self.parse:
                    try:
                        envelope.message = cls.FromString(payload)
                    except (DecodeError, RuntimeWarning, ValueError) as exc:
                        raise Reject("bad_payload", f"{type_name} does not parse ({exc})") from None
                return envelope
        envelope = _decode(frames, max_frame, self.parse)
        if cut > 0 and len(self._known) < KNOWN_PREFIXES and type(header_b) is bytes:  # noqa: E721
            prefix = header_b[:cut]
            if prefix == header_prefix(envelope.src, envelope.type, envelope.version) and \
                    header_b[cut] == _UINT64 and header_b[cut + 9:cut + 17] == _SENT_KEY:
                self._known[prefix] = (envelope.src, envelope.type, envelope.version, _TYPES[envelope.type])
        return envelope

    def _topic(self, topic_b: bytes) -> tuple[str, int]:
        """(topic, payload limit) of a topic frame; remembered up to KNOWN_PREFIXES topics."""
        try:
            topic = bytes(topic_b).decode()
        except UnicodeDecodeError:
            raise Reject("bad_header", "undecodable header (UnicodeDecodeError)") from None
        entry = (topic, payload_limit(topic, self.max_frame))
        if len(self._topics) < KNOWN_PREFIXES and type(topic_b) is bytes:  # noqa: E721
            self._topics[topic_b] = entry
        return entry


def payload_limit(topic: str, max_frame: int = DEFAULT_MAX_FRAME) -> int:
    """The largest payload accepted on ``topic``: its own limit for a topic of
    the contract, ``max_frame`` for any other."""
    entry = spec(topic)
    return entry.max_payload if entry is not None else max_frame


def decode(
    frames: list[bytes] | list[memoryview], max_frame: int = DEFAULT_MAX_FRAME, parse: bool = True
) -> Envelope:
    """Check and decode a received multipart message, or raise Reject.

    With ``parse=False`` the payload is checked for a known type and schema
    version but left serialized (recorders store the bytes as they came).
    Receivers that decode many messages keep a ``Decoder`` instead.
    """
    if len(frames) != 3:
        raise Reject("frame_count", f"expected 3 frames, got {len(frames)}")
    topic_b, header_b, payload = frames
    if len(header_b) > max_frame or len(topic_b) > max_frame:
        raise Reject("oversize", f"frame of {max(len(topic_b), len(header_b))} bytes exceeds {max_frame}")
    return _decode(frames, max_frame, parse)


def _decode(frames: list[bytes] | list[memoryview], max_frame: int, parse: bool) -> Envelope:
    """The general path of ``decode``, after the frame count and the topic and header sizes were checked."""
    topic_b, header_b, payload = frames
    try:
        topic = bytes(topic_b).decode()
        header = msgpack.unpackb(header_b)
        seq = header["seq"]
        src = header["src"]
        type_name = header["type"]
        sent_ns = header["sent_ns"]
        major, minor = header["v"]
        step = header.get("step")
    except (UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException) as exc:
        raise Reject("bad_header", f"undecodable header ({type(exc).__name__})") from None
    limit = payload_limit(topic, max_frame)
    if len(payload) > limit:
        raise Reject("oversize", f"{topic}: payload of {len(payload)} bytes exceeds {limit}")
    if type(seq) is not int or type(sent_ns) is not int or type(type_name) is not str:  # noqa: E721 - exact and fast
        raise Reject("bad_header", "header fields of the wrong type")
    if step is not None and type(step) is not int:  # noqa: E721
        raise Reject("bad_header", "header step is not an integer")
    if major != SCHEMA_MAJOR:
        raise Reject(
            "schema_version",
            f"peer {src!r} speaks schema {major}.{minor}, this node {SCHEMA_MAJOR}.{SCHEMA_MINOR}: "
            "run nodes of the same roarm-hil major version",
        )
    cls = _TYPES.get(type_name)
    if cls is None:
        raise Reject("unknown_type", f"unknown message type {type_name!r}")
    envelope = Envelope(topic, seq, str(src), type_name, sent_ns, (major, minor), payload, step=step)
    if parse:
        try:
            envelope.message = cls.FromString(payload)
        except (DecodeError, RuntimeWarning, ValueError) as exc:
            raise Reject("bad_payload", f"{type_name} does not parse ({exc})") from None
    return envelope


def parse_payload(cls: registry.MessageClass, payload: bytes) -> Message:
    try:
        return cls.FromString(payload)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise Reject("bad_payload", f"{cls.DESCRIPTOR.full_name} does not parse ({exc})") from None
