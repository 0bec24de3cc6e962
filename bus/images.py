"""What a camera frame on the bus is: encodings, checks, and its wire layout.

Frames are ``foxglove.RawImage`` (uncompressed) or ``foxglove.CompressedImage``
(JPEG, PNG). A frame is checked before anyone uses it: a raw frame's data must
be exactly ``row_stride * height`` bytes with ``row_stride >= width * bytes per
pixel`` of a known encoding; a compressed frame must be a known format whose
data starts with that format's signature. Anything else is a ``bad_image``
reject, counted like every other bad input.

Large frames cross the bus without copies: the sender writes the message's
other fields in front of the pixels in one buffer (``FrameBuffer``) and hands
it to ZMQ as is; the receiver finds the ``data`` field in the received buffer
(``split_data``) and keeps a view of it. Only protobuf is used here.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from bus.envelope import Reject
from bus.wire import length_prefix, stamp, stamp_ns_of
from schemas.foxglove import CompressedImage, RawImage

# RawImage.encoding -> (bytes per pixel, values per pixel) (foxglove's raw encodings).
RAW_ENCODINGS: dict[str, tuple[int, int]] = {
    "rgb8": (3, 3),
    "bgr8": (3, 3),
    "rgba8": (4, 4),
    "bgra8": (4, 4),
    "mono8": (1, 1),
    "8UC1": (1, 1),
    "8UC3": (3, 3),
    "mono16": (2, 1),
    "16UC1": (2, 1),
    "32FC1": (4, 1),
    "uyvy": (2, 2),
    "yuyv": (2, 2),
}
# CompressedImage.format -> the bytes every such file starts with.
COMPRESSED_SIGNATURES: dict[str, bytes] = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
}
# Field numbers of ``data`` in the two messages (foxglove's .proto files).
RAW_DATA_FIELD = 6
COMPRESSED_DATA_FIELD = 2
# Room kept in front of the pixels of a FrameBuffer for the other fields of
# the message: timestamp (<= 24 bytes), frame_id (a camera name, <= 34),
# width, height, row stride (<= 18), encoding (<= 8) and the data tag (<= 6).
PREFIX_ROOM = 128
# Streams a RawReader remembers (a subscriber reads a few cameras; more take the full path).
READER_TOPICS = 64


def bad_image(detail: str) -> Reject:
    return Reject("bad_image", detail)


def check_raw(width: int, height: int, encoding: str, row_stride: int, size: int) -> None:
    """Raise a bad_image Reject unless the fields describe ``size`` bytes of pixels."""
    layout = RAW_ENCODINGS.get(encoding)
    if layout is None:
        raise bad_image(f"unknown raw encoding {encoding!r} (known: {', '.join(RAW_ENCODINGS)})")
    if width <= 0 or height <= 0:
        raise bad_image(f"resolution {width}x{height} is empty")
    bpp = layout[0]
    if row_stride < width * bpp:
        raise bad_image(f"row stride {row_stride} < {width} px x {bpp} B of {encoding}")
    if size != row_stride * height:
        raise bad_image(
            f"{size} bytes of data for {width}x{height} {encoding} (row stride {row_stride}): "
            f"expected {row_stride * height}"
        )


def check_compressed(fmt: str, data: bytes | memoryview) -> None:
    """Raise a bad_image Reject unless ``data`` is plausibly a ``fmt`` image."""
    signature = COMPRESSED_SIGNATURES.get(fmt)
    if signature is None:
        raise bad_image(f"unknown compressed format {fmt!r} (known: {', '.join(COMPRESSED_SIGNATURES)})")
    if bytes(data[: len(signature)]) != signature:
        raise bad_image(f"data does not start like a {fmt} image")


class FrameBuffer:
    """One frame's pixels with room in front for the rest of its message.

    A renderer or a camera writes into ``pixels``; publishing then writes
    the message's other fields into the room and sends the whole as one
    payload, without copying the pixels. ``storage`` may be any writable
    contiguous buffer of ``PREFIX_ROOM + nbytes`` bytes (a numpy array is
    cheaper than the default zero-filled bytearray). A buffer is sent once:
    ZMQ reads it after ``publish`` returns, so a new frame needs a new one.
    """

    def __init__(self, nbytes: int, storage: object | None = None) -> None:
        self.storage = memoryview(bytearray(PREFIX_ROOM + nbytes) if storage is None else storage).cast("B")
        if self.storage.readonly or len(self.storage) < PREFIX_ROOM + nbytes:
            raise ValueError(f"frame storage must be writable and hold {PREFIX_ROOM + nbytes} bytes")
        self.nbytes = nbytes
        self.pixels = self.storage[PREFIX_ROOM : PREFIX_ROOM + nbytes]
        self.sent = False

    def payload(self, head: bytes) -> memoryview:
        """The serialized message: ``head`` (fields and data tag) then the pixels."""
        if self.sent:
            raise ValueError("this FrameBuffer was already published; ZMQ may still be reading it")
        if len(head) > PREFIX_ROOM:
            raise ValueError(f"message fields of {len(head)} bytes do not fit the {PREFIX_ROOM}-byte room")
        start = PREFIX_ROOM - len(head)
        self.storage[start:PREFIX_ROOM] = head
        self.sent = True
        return self.storage[start : PREFIX_ROOM + self.nbytes]


def raw_head(
    *, width: int, height: int, encoding: str, row_stride: int, stamp_ns: int, frame_id: str, size: int
) -> bytes:
    """Every field of a RawImage but ``data``, followed by the data field's tag and length."""
    return timestamp_field(stamp_ns) + raw_rest(width=width, height=height, encoding=encoding, row_stride=row_stride,
                                                frame_id=frame_id, size=size)


def timestamp_field(stamp_ns: int) -> bytes:
    """A RawImage's or CompressedImage's first field as protobuf writes it: the timestamp (field 1)."""
    body = stamp(stamp_ns).SerializeToString()
    return b"\x0a" + bytes((len(body),)) + body  # a Timestamp is at most 22 bytes: a one-byte length


def raw_rest(*, width: int, height: int, encoding: str, row_stride: int, frame_id: str, size: int) -> bytes:
    """The head of a RawImage after its timestamp (protobuf writes fields in number order, 1 first):
    the same for every frame of a stream, so a publisher builds it once and a reader recognises it."""
    fields = RawImage(frame_id=frame_id, width=width, height=height, encoding=encoding, step=row_stride)
    return fields.SerializeToString() + length_prefix(RAW_DATA_FIELD, size)


def compressed_head(*, fmt: str, stamp_ns: int, frame_id: str, size: int) -> bytes:
    fields = CompressedImage(timestamp=stamp(stamp_ns), frame_id=frame_id, format=fmt).SerializeToString()
    return fields + length_prefix(COMPRESSED_DATA_FIELD, size)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise bad_image("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def split_data(payload: memoryview, data_field: int) -> tuple[bytes, memoryview]:
    """(every other field, serialized; a view of the last ``data`` field) of a
    serialized message, without copying the data."""
    pos = 0
    end = len(payload)
    data_start = data_end = -1
    others: list[tuple[int, int]] = []
    while pos < end:
        field_start = pos
        key, pos = _read_varint(payload, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _read_varint(payload, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _read_varint(payload, pos)
            if key >> 3 == data_field:
                data_start, data_end = pos, pos + length
                pos += length
                continue
            pos += length
        else:
            raise bad_image(f"wire type {wire} does not occur in image messages")
        if pos > end:
            raise bad_image("field runs past the end of the message")
        others.append((field_start, pos))
    if data_end > end:
        raise bad_image("data field runs past the end of the message")
    head = b"".join(bytes(payload[a:b]) for a, b in others)
    data = payload[data_start:data_end] if data_start >= 0 else payload[0:0]
    return head, data


@dataclass(slots=True)
class Image:
    """A received, checked frame. ``data`` is a read-only view of the received
    buffer (no copy): ``numpy.frombuffer(image.data, numpy.uint8)``.

    ``step`` is the robot step (JointState.seq) the frame belongs to, or None
    (a real camera); ``stamp_ns`` is when it was taken (CLOCK_MONOTONIC of the
    camera's host; in a simulator, the stamp of that step's JointState).
    ``row_stride`` is RawImage.step (bytes per row); 0 for compressed frames.
    """

    camera: str
    topic: str
    src: str
    seq: int
    step: int | None
    stamp_ns: int
    sent_ns: int
    recv_ns: int
    frame_id: str
    encoding: str
    compressed: bool
    width: int
    height: int
    row_stride: int
    data: memoryview

    @property
    def channels(self) -> int:
        """Values per pixel of a raw frame (3 for rgb8), 0 for a compressed one."""
        return 0 if self.compressed else RAW_ENCODINGS[self.encoding][1]


def read_raw(payload: memoryview) -> tuple[RawImage, memoryview]:
    """The fields (``data`` left empty) and a view of the pixels of a RawImage
    payload, checked; raises a bad_image or bad_payload Reject."""
    head, data = split_data(payload, RAW_DATA_FIELD)
    try:
        message = RawImage.FromString(head)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise Reject("bad_payload", f"foxglove.RawImage does not parse ({exc})") from None
    check_raw(message.width, message.height, message.encoding, message.step, len(data))
    return message, data


# What a RawImage says, read: (stamp_ns, frame_id, encoding, width, height, row stride, pixels).
RawFields = tuple[int, str, str, int, int, int, memoryview]


class RawReader:
    """``read_raw`` for the frames of a few streams, at a fraction of its cost for this bus's own layout.

    A frame as FramePublisher writes it is its timestamp field, then the
    rest of the head (``raw_rest``: the same bytes for every frame of a
    stream), then the pixels. The first frame of a stream (per topic) takes
    the full path (``read_raw``: parsed and checked) and, when it is in that
    layout exactly, its rest is remembered with what it said; a later frame
    whose bytes after the timestamp are identical to it and whose pixels are
    the size it declared then costs a comparison and a Timestamp parse. Any
    other frame takes the full path again, so what is accepted and rejected
    is exactly what ``read_raw`` accepts and rejects.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        # topic -> (rest of the head, (frame_id, encoding, width, height, row stride, pixel bytes))
        self._known: dict[str, tuple[bytes, tuple[str, str, int, int, int, int]]] = {}

    def read(self, topic: str, payload: memoryview) -> RawFields:
        """The fields and a view of the pixels of a RawImage payload, checked; raises a bad_image or
        bad_payload Reject."""
        known = self._known.get(topic)
        if known is not None and len(payload) > 2 and payload[0] == 0x0A and payload[1] < 0x80:
            rest, (frame_id, encoding, width, height, row_stride, size) = known
            start = 2 + payload[1]
            end = start + len(rest)
            if len(payload) - end == size and payload[start:end] == rest:
                try:
                    timestamp = Timestamp.FromString(payload[2:start])
                except (DecodeError, RuntimeWarning, ValueError) as exc:
                    raise Reject("bad_payload", f"foxglove.RawImage does not parse ({exc})") from None
                return stamp_ns_of(timestamp), frame_id, encoding, width, height, row_stride, payload[end:]
        message, data = read_raw(payload)
        stamp_ns = stamp_ns_of(message.timestamp)
        fields = (message.frame_id, message.encoding, message.width, message.height, message.step, len(data))
        rest = raw_rest(width=message.width, height=message.height, encoding=message.encoding,
                        row_stride=message.step, frame_id=message.frame_id, size=len(data))
        head = timestamp_field(stamp_ns)
        if len(payload) == len(head) + len(rest) + len(data) and payload[: len(head)] == head and \
                payload[len(head): len(head) + len(rest)] == rest and \
                (topic in self._known or len(self._known) < READER_TOPICS):
            self._known[topic] = (rest, fields)
        return stamp_ns, message.frame_id, message.encoding, message.width, message.height, message.step, data


def read_compressed(payload: memoryview) -> tuple[CompressedImage, memoryview]:
    head, data = split_data(payload, COMPRESSED_DATA_FIELD)
    try:
        message = CompressedImage.FromString(head)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise Reject("bad_payload", f"foxglove.CompressedImage does not parse ({exc})") from None
    check_compressed(message.format, data)
    return message, data


def check_message(message: RawImage | CompressedImage) -> None:
    """The same checks on a fully parsed message (generic subscribers)."""
    if isinstance(message, RawImage):
        check_raw(message.width, message.height, message.encoding, message.step, len(message.data))
    else:
        check_compressed(message.format, message.data)
