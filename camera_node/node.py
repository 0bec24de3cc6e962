"""The camera node: a real camera (or a video file) on the bus as the run's ``camera`` role.

One loop: at each frame time it grabs a frame through OpenCV, stamps it with
the host's CLOCK_MONOTONIC right after the grab, converts it to RGB at the
declared resolution (resized when the device delivers another size) and
publishes it with roarm.camera_role, the same messages the sim node's
cameras send, with no ``step`` (a real camera cannot know the robot's). The
node's own PUB is the camera role's, queued FRAME_HWM frames per subscriber,
and carries its heartbeats and events too; it answers ping, info, shutdown.

A video file plays paced at ``rate_hz`` and starts over at its end (unless
``loop`` is off: then the node stays up, degraded, sending nothing). A
device that stops delivering is a fault: counted, reported, and reopened
with backoff, never a crash.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bus.endpoints import Endpoints
from bus.errors import HilError
from bus.frames import FRAME_HWM, FramePublisher
from bus.latency import LatencyStats
from bus.node import Node
from roarm.camera import CameraSpec
from roarm.camera_role import CameraRole
from schemas import messages_pb2, services_pb2

Severity = messages_pb2.Severity
REOPEN_S = (0.5, 1.0, 2.0, 5.0)  # backoff between attempts to reopen a device that failed


class CameraOpenError(HilError, OSError):
    """The device or file cannot be opened as a camera (exit 2: a set-up problem)."""


@dataclass(frozen=True)
class CameraConfig:
    """What ``hil node camera`` runs: the spec (``device``, name, resolution, rate, encoding) and how."""

    spec: CameraSpec
    node_name: str = "camera"
    loop: bool = True  # a video file starts over at its end
    heartbeat_period_s: float = 0.5


def is_file(device: str) -> bool:
    """A video file rather than a capture device (/dev/video*, or a camera index)."""
    path = Path(device)
    return path.is_file() and not device.startswith("/dev/")


def open_capture(device: str, spec: CameraSpec) -> Any:
    """An opened cv2.VideoCapture of ``device`` (a path, a /dev/video node or an index)."""
    source: Any = int(device) if device.isdigit() else device
    if isinstance(source, str) and not is_file(source) and not Path(source).exists():
        raise CameraOpenError(f"no camera or video file at {device!r} (list cameras with v4l2-ctl --list-devices)")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        raise CameraOpenError(f"OpenCV cannot open {device!r} as a camera or video "
                              "(permissions of /dev/video*? a format OpenCV's FFmpeg cannot read?)")
    if not (isinstance(source, str) and is_file(source)):
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height)
        capture.set(cv2.CAP_PROP_FPS, spec.rate_hz)
    return capture


class CameraNode:
    """One camera on the bus, paced at its spec's ``rate_hz``."""

    def __init__(self, config: CameraConfig, endpoints: Endpoints) -> None:
        self.config = config
        self.spec = config.spec
        if not self.spec.device:
            raise CameraOpenError("a camera node needs a device (/dev/video0 or a video file)")
        self.device = self.spec.device
        self.file = is_file(self.device)
        self.capture: Any = open_capture(self.device, self.spec)  # before binding: once it answers ping it is ready
        self.node = Node("camera", config.node_name, endpoints, info=self.describe,
                         heartbeat_period_s=config.heartbeat_period_s, pub_hwm=FRAME_HWM)
        self.role = CameraRole(FramePublisher.on(self.node.publisher.socket, config.node_name), [self.spec])
        self.period_s = 1.0 / self.spec.rate_hz
        self.grab_time = LatencyStats()  # grab + retrieve + convert, per frame
        self._bgr: np.ndarray | None = None
        self.delivered = (0, 0)  # the size the device delivers
        self._reopen_at = 0.0
        self._failures = 0

    def run(self) -> None:
        """Frames until shutdown or a signal; always releases the device and closes the sockets."""
        try:
            deadline = time.monotonic()
            while self.node.running:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
                self.node.spin(min(wait_ms, 50))
                now = time.monotonic()
                if now < deadline:
                    continue
                self.tick()
                deadline += self.period_s
                if now - deadline > self.period_s:  # fell behind (a slow device): no burst to catch up
                    self.node.counters["overrun"] += 1
                    deadline = now + self.period_s
        finally:
            if self.capture is not None:
                self.capture.release()
            self.node.close()

    def tick(self) -> None:
        """Grab, stamp, convert and publish one frame; a failed read is counted, never raised."""
        if self.capture is None:
            self._reopen()
            return
        start = time.perf_counter()
        if not self.capture.grab():
            self._read_failed()
            return
        stamp_ns = time.monotonic_ns()  # host time of the grab
        ok, bgr = self.capture.retrieve(self._bgr)
        if not ok or bgr is None:
            self._read_failed()
            return
        self._bgr = bgr
        shot = self.role.shot(self.spec.name)
        height, width = bgr.shape[:2]
        self.delivered = (width, height)
        if (width, height) != (self.spec.width, self.spec.height):
            bgr = cv2.resize(bgr, (self.spec.width, self.spec.height), interpolation=cv2.INTER_AREA)
        if bgr.ndim == 2:
            cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB, dst=shot.pixels)
        else:
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=shot.pixels)
        self.grab_time.add(time.perf_counter() - start)
        self.role.publish(shot, stamp_ns, step=None)
        if self._failures:
            self._failures = 0
            self.node.set_state("ok")

    def _read_failed(self) -> None:
        if self.file and self.config.loop and self.role.frames:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)  # end of the file: from the start again
            self.node.counters["video.restart"] += 1
            return
        if self.file:
            self.node.set_state("degraded", f"end of video {self.device} (--no-loop)")
            return
        self._failures += 1
        self.node.counters["camera.read_error"] += 1
        self.node.set_state("fault", f"{self.device} delivers no frames")
        self.node.event(Severity.ERROR, "camera.read_error", f"{self.device} delivered no frame; reopening")
        self.capture.release()
        self.capture = None
        self._reopen_at = time.monotonic() + REOPEN_S[min(self._failures - 1, len(REOPEN_S) - 1)]

    def _reopen(self) -> None:
        if time.monotonic() < self._reopen_at:
            return
        try:
            self.capture = open_capture(self.device, self.spec)
        except CameraOpenError as exc:
            self._failures += 1
            self._reopen_at = time.monotonic() + REOPEN_S[min(self._failures - 1, len(REOPEN_S) - 1)]
            self.node.set_state("fault", str(exc))
            return
        self.node.counters["camera.reopened"] += 1
        self.node.event(Severity.WARNING, "camera.reopened", f"{self.device} opened again")

    def describe(self) -> services_pb2.NodeInfo:
        info = services_pb2.NodeInfo(backend="opencv", mode="realtime", dt=self.period_s)
        info.extra.update({"device": self.device, "source": "video file" if self.file else "camera",
                           "cameras": json.dumps([self.spec.to_dict()]),
                           "delivered": f"{self.delivered[0]}x{self.delivered[1]}",
                           "loop": str(self.config.loop).lower()})
        info.metrics.update(self.grab_time.total().as_dict("grab_"))
        info.metrics["frames"] = float(self.role.frames)
        info.metrics["bytes"] = float(self.role.bytes)
        return info
