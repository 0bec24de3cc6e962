"""The camera's side of the bus contract, written once for every camera source.

A vision policy must not be able to tell a rendered camera (the sim node)
from a real one (``hil node camera``) by the messages: both hand their
pictures to one ``CameraRole``, which publishes them on the camera role's PUB
(bus/frames.py) as the spec says: ``raw`` as ``foxglove.RawImage`` rgb8 on
``camera/<name>/image`` (the pixels written straight into a FrameBuffer and
sent without a copy), ``jpeg``/``png`` as ``foxglove.CompressedImage`` on
``camera/<name>/compressed``; each frame is followed by the camera's
``foxglove.CameraCalibration`` (pinhole, no distortion: roarm.camera's
intrinsics) on ``camera/<name>/calibration`` with the same timestamp, so a
late joiner and a bag always have it.

A source asks for a ``Shot`` (the (h, w, 3) RGB array to fill), fills it
(a renderer, a capture), then publishes it with its stamp and step:

    shot = role.shot("wrist")
    backend.render("wrist", shot.pixels)
    role.publish(shot, stamp_ns=state.stamp_ns, step=state.seq)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from bus.frames import FramePublisher
from bus.images import PREFIX_ROOM, FrameBuffer, stamp
from roarm.camera import CameraSpec, check_unique
from schemas.foxglove import CameraCalibration

JPEG_QUALITY = 90
PNG_COMPRESSION = 1  # zlib level: PNG is for lossless frames, not small ones; level 1 is ~5x faster than 9


@dataclass
class Shot:
    """One frame being made: ``pixels`` ((height, width, 3) uint8 RGB, rows top
    down) is what the source fills; for a raw camera it is a view of ``buffer``."""

    spec: CameraSpec
    pixels: np.ndarray
    buffer: FrameBuffer | None


def calibration(spec: CameraSpec, stamp_ns: int = 0) -> CameraCalibration:
    """The pinhole calibration of a camera (square pixels, centred, no distortion)."""
    fx, fy, cx, cy = spec.intrinsics()
    return CameraCalibration(
        timestamp=stamp(stamp_ns), frame_id=spec.name, width=spec.width, height=spec.height,
        distortion_model="plumb_bob", D=[0.0] * 5, K=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0],
        R=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], P=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])


class CameraRole:
    """Frames of the cameras in ``specs`` onto ``publisher`` (its socket is the camera role's PUB)."""

    def __init__(self, publisher: FramePublisher, specs: Sequence[CameraSpec]) -> None:
        check_unique(specs)
        self.publisher = publisher
        self.specs = {spec.name: spec for spec in specs}
        self._calibrations = {spec.name: calibration(spec) for spec in specs}
        # Compressed cameras reuse one RGB array and one BGR array each (the encoder copies).
        self._rgb = {s.name: np.empty((s.height, s.width, 3), np.uint8) for s in specs if s.encoding != "raw"}
        self._bgr = {s.name: np.empty((s.height, s.width, 3), np.uint8) for s in specs if s.encoding != "raw"}
        self.frames = 0
        self.bytes = 0

    def shot(self, name: str) -> Shot:
        """The array to fill with camera ``name``'s next frame."""
        spec = self.specs[name]
        if spec.encoding != "raw":
            return Shot(spec, self._rgb[name], None)
        nbytes = spec.width * spec.height * 3
        # A fresh buffer per frame: ZMQ may still be sending the previous one.
        buffer = FrameBuffer(nbytes, np.empty(PREFIX_ROOM + nbytes, np.uint8))
        pixels = np.frombuffer(buffer.pixels, np.uint8).reshape(spec.height, spec.width, 3)
        return Shot(spec, pixels, buffer)

    def publish(self, shot: Shot, stamp_ns: int, step: int | None = None) -> int:
        """Publish a filled shot and its calibration; returns the frame's payload size in bytes.

        ``stamp_ns``: when it was taken (CLOCK_MONOTONIC; a simulator: the
        stamp of that step's JointState); ``step``: the JointState seq it
        belongs to, None when the source cannot know it (a real camera).
        """
        spec = shot.spec
        if shot.buffer is not None:
            size = self.publisher.publish_raw(spec.name, shot.buffer, width=spec.width, height=spec.height,
                                              encoding="rgb8", stamp_ns=stamp_ns, step=step)
        else:
            size = self.publisher.publish_compressed(spec.name, encode(shot.pixels, spec.encoding, self._bgr[spec.name]),
                                                     fmt=spec.encoding, stamp_ns=stamp_ns, step=step)
        info = self._calibrations[spec.name]
        info.timestamp.CopyFrom(stamp(stamp_ns))
        self.publisher.publish_calibration(spec.name, info)
        self.frames += 1
        self.bytes += size
        return size


def encode(rgb: np.ndarray, encoding: str, bgr: np.ndarray | None = None) -> bytes:
    """An RGB image as JPEG (quality JPEG_QUALITY) or PNG bytes; ``bgr`` is scratch space of its shape."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=bgr)
    if encoding == "jpeg":
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    elif encoding == "png":
        ok, data = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    else:
        raise ValueError(f"cannot encode {encoding!r}: jpeg or png")
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as {encoding}")
    return data.tobytes()
