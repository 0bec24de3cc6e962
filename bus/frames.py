"""Publishing and subscribing camera frames.

Frames go out on a PUB socket of their own (the ``camera`` role's endpoint),
never on a node's control PUB: a PUB queues up to its high-water mark per
subscriber, and a slow viewer holding 10,000 queued 1 MB frames would eat
gigabytes. Here the queue is FRAME_HWM frames per subscriber; past it, that
subscriber misses frames (its envelope seq shows the gap) and nobody else
notices. Large payloads are sent without copies (bus/images.FrameBuffer).

A FrameSubscriber keeps only the newest frame per topic: it reads what is
waiting, checks each header (bad ones are counted), and parses and checks
only the newest, handing out its pixels as a view of the received buffer.

Both ends keep what never changes within a stream, as bus/envelope.py does
for control messages: a frame's envelope header is this bus's layout with
``step`` (the keys constant per sender and type first, then step, seq and
sent_ns as msgpack uint64: one struct call to write or read), and its
RawImage head is the timestamp field then bytes that are the same for every
frame of a stream (bus/images.RawReader). A receiver checks the constant
parts once through the general path and compares bytes after that; anything
else takes the general path, so what is accepted is unchanged.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable

import zmq

from bus.envelope import KNOWN_PREFIXES, Encoder, Envelope, Reject, decode, header_prefix, payload_limit
from bus.images import (
    FrameBuffer,
    Image,
    RawReader,
    compressed_head,
    raw_rest,
    read_compressed,
    stamp_ns_of,
    timestamp_field,
)
from bus.pubsub import LATEST_HWM, RejectHandler
from bus.security import Security, no_security
from bus.sockets import make_socket, send_frames
from bus.topics import (
    COMPRESSED_SUFFIX,
    IMAGE_MAX_PAYLOAD,
    IMAGE_SUFFIX,
    calibration_topic,
    camera_of,
    compressed_topic,
    image_topic,
)
from schemas.foxglove import CameraCalibration

# Frames queued per subscriber before that subscriber misses some: about
# half a second at 30 frames/s, 15 MB at 640x480 RGB.
FRAME_HWM = 16
# The end of a frame's envelope header (module docstring): 0xcf step, "seq", 0xcf seq, "sent_ns", 0xcf sent_ns.
_FRAME_TAIL = struct.Struct(">BQ4sBQ8sBQ")
_STEP_KEY = b"\xa4step"
_SEQ_KEY = b"\xa3seq"
_SENT_KEY = b"\xa7sent_ns"
_UINT64 = 0xCF
_U64_MAX = (1 << 64) - 1
# Streams whose constant head a publisher keeps (one per camera and resolution).
HEADS_KEPT = 64


def frame_header_prefix(src: str, type_name: str) -> bytes:
    """The constant part of a frame's envelope header, up to the ``step`` value: this bus's header
    (bus.envelope.header_prefix) as a map of six keys, ``step`` the fourth."""
    return b"\x86" + header_prefix(src, type_name)[1 : -len(_SEQ_KEY)] + _STEP_KEY


class FramePublisher:
    """Publishes one or more cameras' frames and calibrations on one PUB socket."""

    def __init__(
        self,
        ctx: zmq.Context,
        endpoint: str,
        src: str,
        *,
        bind: bool = True,
        hwm: int = FRAME_HWM,
        security: Security | None = None,
    ) -> None:
        self._start(src, make_socket(ctx, zmq.PUB, endpoint, bind=bind, options={zmq.SNDHWM: hwm},
                                     security=security))

    @classmethod
    def on(cls, socket: zmq.Socket, src: str) -> FramePublisher:
        """Frames on a PUB socket made elsewhere: a camera node's own PUB (bus.node.Node
        with ``pub_hwm=FRAME_HWM``), which also carries its heartbeats. Its owner closes it."""
        publisher = cls.__new__(cls)
        publisher._start(src, socket)
        return publisher

    def _start(self, src: str, socket: zmq.Socket) -> None:
        self.encoder = Encoder(src)
        self.socket = socket
        self._prefixes: dict[str, bytes] = {}  # type name -> frame_header_prefix
        self._topics: dict[str, bytes] = {}
        self._rests: dict[tuple[int, int, str, int, str, int], bytes] = {}  # a raw stream's fields -> raw_rest

    def publish_raw(
        self,
        camera: str,
        pixels: FrameBuffer | bytes | bytearray | memoryview,
        *,
        width: int,
        height: int,
        encoding: str,
        stamp_ns: int,
        step: int | None = None,
        row_stride: int = 0,
        frame_id: str = "",
    ) -> int:
        """Publish an uncompressed frame on ``camera/<camera>/image``; returns its payload size.

        ``pixels`` is a FrameBuffer (sent without a copy) or any bytes-like
        object (copied once). ``row_stride`` 0 means tightly packed rows.
        ``step`` is the robot step the frame belongs to (None: not known);
        ``stamp_ns`` when it was taken (CLOCK_MONOTONIC). Nothing is checked
        here beyond what the receivers check; see bus.images.check_raw.
        """
        topic = image_topic(camera)
        size = pixels.nbytes if isinstance(pixels, FrameBuffer) else len(memoryview(pixels).cast("B"))
        if row_stride == 0:
            row_stride = size // height if height else 0
        key = (width, height, encoding, row_stride, frame_id or camera, size)
        rest = self._rests.get(key)
        if rest is None:
            rest = raw_rest(width=width, height=height, encoding=encoding, row_stride=row_stride,
                            frame_id=frame_id or camera, size=size)
            if len(self._rests) < HEADS_KEPT:
                self._rests[key] = rest
        return self._send(topic, "foxglove.RawImage", timestamp_field(stamp_ns) + rest, pixels, step)

    def publish_compressed(
        self,
        camera: str,
        data: FrameBuffer | bytes | bytearray | memoryview,
        *,
        fmt: str,
        stamp_ns: int,
        step: int | None = None,
        frame_id: str = "",
    ) -> int:
        """Publish a JPEG or PNG frame (``fmt`` "jpeg"/"png") on ``camera/<camera>/compressed``."""
        topic = compressed_topic(camera)
        size = data.nbytes if isinstance(data, FrameBuffer) else len(memoryview(data).cast("B"))
        head = compressed_head(fmt=fmt, stamp_ns=stamp_ns, frame_id=frame_id or camera, size=size)
        return self._send(topic, "foxglove.CompressedImage", head, data, step)

    def publish_calibration(self, camera: str, calibration: CameraCalibration) -> None:
        """Publish a camera's intrinsics on ``camera/<camera>/calibration``."""
        send_frames(self.socket, self.encoder.encode(calibration_topic(camera), calibration))

    def _send(
        self, topic: str, type_name: str, head: bytes, data: FrameBuffer | bytes | bytearray | memoryview,
        step: int | None,
    ) -> int:
        if isinstance(data, FrameBuffer):
            payload: bytes | memoryview = data.payload(head)
        else:
            payload = head + bytes(memoryview(data).cast("B"))
        if step is None or not 0 <= step <= _U64_MAX:  # (no step: the control messages' own layout)
            send_frames(self.socket, self.encoder.encode_raw(topic, type_name, payload, step=step))
            return len(payload)
        prefix = self._prefixes.get(type_name)
        if prefix is None:
            prefix = self._prefixes[type_name] = frame_header_prefix(self.encoder.src, type_name)
        topic_b = self._topics.get(topic)
        if topic_b is None:
            topic_b = self._topics[topic] = topic.encode()
        header = prefix + _FRAME_TAIL.pack(_UINT64, step, _SEQ_KEY, _UINT64, self.encoder.next_seq(topic), _SENT_KEY,
                                           _UINT64, time.monotonic_ns())
        send_frames(self.socket, [topic_b, header, payload])
        return len(payload)

    def close(self) -> None:
        self.socket.close(0)


class FrameSubscriber:
    """Receives the newest frame of each wanted camera, checked, without copies."""

    def __init__(
        self,
        ctx: zmq.Context,
        endpoints: Iterable[str],
        cameras: Iterable[str],
        *,
        compressed: bool = False,
        on_reject: RejectHandler | None = None,
        security: Security | None = None,
    ) -> None:
        """``compressed`` subscribes to the cameras' JPEG/PNG topic instead of the raw one."""
        make_topic = compressed_topic if compressed else image_topic
        self.topics = frozenset(make_topic(c) for c in cameras)
        self.ctx = ctx
        self.security = security or no_security()
        self.socket = make_socket(ctx, zmq.SUB, list(endpoints), bind=False, max_frame=IMAGE_MAX_PAYLOAD,
                                  options={zmq.RCVHWM: LATEST_HWM}, security=self.security)
        for topic in self.topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.on_reject = on_reject
        self.superseded = 0
        # Subscribed topic frames -> (topic, its payload limit, camera, suffix); checked header prefixes
        # -> (src, type, version) (module docstring); the raw frames' reader.
        self._streams = {t.encode(): (t, payload_limit(t, IMAGE_MAX_PAYLOAD)) for t in self.topics}
        self._cameras = {t: camera_of(t) for t in self.topics}
        self._prefixes: dict[bytes, tuple[str, str, tuple[int, int]]] = {}
        self._raw = RawReader()

    def connect(self, endpoint: str) -> None:
        self.security.prepare(self.ctx, self.socket, endpoint, bind=False)
        self.socket.connect(endpoint)

    def latest(self, timeout_ms: int = 0) -> dict[str, Image]:
        """The newest good frame of each camera that sent one, waiting up to
        ``timeout_ms`` (-1: forever) for the first; {} when none came."""
        sock = self.socket
        if not sock.poll(timeout_ms):  # (returns at once when one is waiting)
            return {}
        newest: dict[str, tuple[list[zmq.Frame], Envelope]] = {}
        count = 0
        while True:  # a message is waiting (ZMQ_EVENTS is asked once per message: it costs microseconds)
            frames = _recv_views(sock)
            count += 1
            try:
                envelope = self._envelope(frames)
            except Reject as reject:
                self._reject(reject)
            else:
                if envelope.topic in self.topics:
                    newest[envelope.topic] = (frames, envelope)
            if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                break
        images: dict[str, Image] = {}
        for frames, envelope in newest.values():
            image = self._image(frames, envelope)
            if image is not None:
                images[image.camera] = image
        self.superseded += count - len(newest)
        return images

    def _envelope(self, frames: list[zmq.Frame]) -> Envelope:
        """Check and decode one message's envelope (its payload left serialized), or raise Reject."""
        if len(frames) == 3:
            header_b = frames[1].bytes
            cut = len(header_b) - _FRAME_TAIL.size
            known = self._prefixes.get(header_b[:cut]) if cut > 0 else None
            stream = self._streams.get(frames[0].bytes) if known is not None else None
            if stream is not None:
                tag, step, seq_key, tag2, seq, sent_key, tag3, sent_ns = _FRAME_TAIL.unpack_from(header_b, cut)
                if tag == tag2 == tag3 == _UINT64 and seq_key == _SEQ_KEY and sent_key == _SENT_KEY:
                    topic, limit = stream[0], stream[1]
                    payload = frames[2].buffer
                    if len(payload) > limit:
                        raise Reject("oversize", f"{topic}: payload of {len(payload)} bytes exceeds {limit}")
                    src, type_name, version = known  # type: ignore[misc]
                    return Envelope(topic, seq, src, type_name, sent_ns, version, payload, step=step)
        envelope = decode([f.buffer for f in frames], IMAGE_MAX_PAYLOAD, parse=False)
        if envelope.step is not None and len(self._prefixes) < KNOWN_PREFIXES:
            header_b = frames[1].bytes
            cut = len(header_b) - _FRAME_TAIL.size
            prefix = header_b[:cut]
            if cut > 0 and prefix == frame_header_prefix(envelope.src, envelope.type):
                tag, _, seq_key, tag2, _, sent_key, tag3, _ = _FRAME_TAIL.unpack_from(header_b, cut)
                if tag == tag2 == tag3 == _UINT64 and seq_key == _SEQ_KEY and sent_key == _SENT_KEY:
                    self._prefixes[prefix] = (envelope.src, envelope.type, envelope.version)
        return envelope

    def _image(self, frames: list[zmq.Frame], envelope: Envelope) -> Image | None:
        topic = envelope.topic
        camera, suffix = self._cameras.get(topic) or camera_of(topic) or ("", "")
        try:
            if suffix == IMAGE_SUFFIX:
                if envelope.type != "foxglove.RawImage":
                    raise Reject("wrong_type", f"{topic} carries foxglove.RawImage, got {envelope.type}")
                stamp_ns, frame_id, encoding, width, height, row_stride, data = self._raw.read(topic, frames[2].buffer)
                compressed = False
            elif suffix == COMPRESSED_SUFFIX:
                if envelope.type != "foxglove.CompressedImage":
                    raise Reject("wrong_type", f"{topic} carries foxglove.CompressedImage, got {envelope.type}")
                comp, data = read_compressed(frames[2].buffer)
                stamp_ns, frame_id, encoding, compressed = stamp_ns_of(comp.timestamp), comp.frame_id, comp.format, True
                width = height = row_stride = 0
            else:
                return None
        except Reject as reject:
            self._reject(reject)
            return None
        return Image(
            camera=camera,
            topic=topic,
            src=envelope.src,
            seq=envelope.seq,
            step=envelope.step,
            stamp_ns=stamp_ns,
            sent_ns=envelope.sent_ns,
            recv_ns=time.monotonic_ns(),
            frame_id=frame_id,
            encoding=encoding,
            compressed=compressed,
            width=width,
            height=height,
            row_stride=row_stride,
            data=data,
        )

    def _reject(self, reject: Reject) -> None:
        if self.on_reject is not None:
            self.on_reject(reject)

    def close(self) -> None:
        self.socket.close(0)


def _recv_views(sock: zmq.Socket) -> list[zmq.Frame]:
    """One multipart message as ZMQ frames (their ``buffer`` is a view, no copy)."""
    frame = sock.recv(copy=False)
    frames = [frame]
    while frame.more:
        frame = sock.recv(copy=False)
        frames.append(frame)
    return frames
