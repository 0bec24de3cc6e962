"""The three-frame envelope every bus message travels in: [topic, header, payload].

The header is a small msgpack map (seq, src, type, sent_ns, v, and ``step``
on camera frames: the robot step a frame belongs to) so generic tools can
route, time and count messages without decoding payloads; the payload is the
serialized protobuf message named by ``type``. Payload size limits are per
topic (bus/topics.py): control topics stay small, camera frames may be large.
"""

from __future__ import annotations

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

    def next_seq(self, topic: str) -> int:
        seq = self._seq.get(topic, 0)
        self._seq[topic] = seq + 1
        return seq

    def encode(self, topic: str, message: Message, sent_ns: int | None = None) -> list[bytes]:
        payload = message.SerializeToString()
        return self.encode_raw(topic, message.DESCRIPTOR.full_name, payload, sent_ns)

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
        fields = {
            "seq": self.next_seq(topic) if seq is None else seq,
            "src": self.src,
            "type": type_name,
            "sent_ns": time.monotonic_ns() if sent_ns is None else sent_ns,
            "v": _VERSION,
        }
        if step is not None:
            fields["step"] = step
        return [topic.encode(), self._packer.pack(fields), payload]


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
    """
    if len(frames) != 3:
        raise Reject("frame_count", f"expected 3 frames, got {len(frames)}")
    topic_b, header_b, payload = frames
    if len(header_b) > max_frame or len(topic_b) > max_frame:
        raise Reject("oversize", f"frame of {max(len(topic_b), len(header_b))} bytes exceeds {max_frame}")
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
    message = cls()
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise Reject("bad_payload", f"{cls.DESCRIPTOR.full_name} does not parse ({exc})") from None
    return message
