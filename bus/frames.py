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
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import zmq

from bus.envelope import Encoder, Envelope, Reject, decode
from bus.images import (
    FrameBuffer,
    Image,
    compressed_head,
    raw_head,
    read_compressed,
    read_raw,
    stamp_ns_of,
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
        self.encoder = Encoder(src)
        self.socket = make_socket(ctx, zmq.PUB, endpoint, bind=bind, options={zmq.SNDHWM: hwm}, security=security)

    @classmethod
    def on(cls, socket: zmq.Socket, src: str) -> FramePublisher:
        """Frames on a PUB socket made elsewhere: a camera node's own PUB (bus.node.Node
        with ``pub_hwm=FRAME_HWM``), which also carries its heartbeats. Its owner closes it."""
        publisher = cls.__new__(cls)
        publisher.encoder = Encoder(src)
        publisher.socket = socket
        return publisher

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
        head = raw_head(width=width, height=height, encoding=encoding, row_stride=row_stride, stamp_ns=stamp_ns,
                        frame_id=frame_id or camera, size=size)
        return self._send(topic, "foxglove.RawImage", head, pixels, step)

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
        send_frames(self.socket, self.encoder.encode_raw(topic, type_name, payload, step=step))
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

    def connect(self, endpoint: str) -> None:
        self.security.prepare(self.ctx, self.socket, endpoint, bind=False)
        self.socket.connect(endpoint)

    def latest(self, timeout_ms: int = 0) -> dict[str, Image]:
        """The newest good frame of each camera that sent one, waiting up to
        ``timeout_ms`` (-1: forever) for the first; {} when none came."""
        sock = self.socket
        if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN and not sock.poll(timeout_ms):
            return {}
        newest: dict[str, tuple[list[zmq.Frame], Envelope]] = {}
        count = 0
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = _recv_views(sock)
            count += 1
            try:
                envelope = decode([f.buffer for f in frames], IMAGE_MAX_PAYLOAD, parse=False)
            except Reject as reject:
                self._reject(reject)
                continue
            if envelope.topic in self.topics:
                newest[envelope.topic] = (frames, envelope)
        images: dict[str, Image] = {}
        for frames, envelope in newest.values():
            image = self._image(frames, envelope)
            if image is not None:
                images[image.camera] = image
        self.superseded += count - len(newest)
        return images

    def _image(self, frames: list[zmq.Frame], envelope: Envelope) -> Image | None:
        topic = envelope.topic
        camera, suffix = camera_of(topic) or ("", "")
        try:
            if suffix == IMAGE_SUFFIX:
                if envelope.type != "foxglove.RawImage":
                    raise Reject("wrong_type", f"{topic} carries foxglove.RawImage, got {envelope.type}")
                raw, data = read_raw(frames[2].buffer)
                fields = (raw.timestamp, raw.frame_id, raw.encoding, False, raw.width, raw.height, raw.step)
            elif suffix == COMPRESSED_SUFFIX:
                if envelope.type != "foxglove.CompressedImage":
                    raise Reject("wrong_type", f"{topic} carries foxglove.CompressedImage, got {envelope.type}")
                comp, data = read_compressed(frames[2].buffer)
                fields = (comp.timestamp, comp.frame_id, comp.format, True, 0, 0, 0)
            else:
                return None
        except Reject as reject:
            self._reject(reject)
            return None
        timestamp, frame_id, encoding, compressed, width, height, row_stride = fields
        return Image(
            camera=camera,
            topic=topic,
            src=envelope.src,
            seq=envelope.seq,
            step=envelope.step,
            stamp_ns=stamp_ns_of(timestamp),
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
