"""Camera thumbnails for the run page: a few small JPEGs of what each camera saw.

The runner subscribes to the run's cameras (raw and JPEG/PNG topics) with
frame subscribers, which keep only the newest frame, so a runner that looks
rarely never backs up the camera's queue or the control loop. About once per
``interval_s`` of the run clock (simulated seconds) it takes each camera's
newest frame, shrinks it to ``max_width`` pixels and stores it as a JPEG in
the trace (``TraceRecorder.thumbnail``); report.html shows them in its
``#cameras`` section.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2

from bus.frames import FrameSubscriber
from bus.images import Image
from bus.node import Node
from policy_node.policy.pixels import PixelError, encode_jpeg, to_rgb
from scenarios.trace_recorder import TraceRecorder

INTERVAL_S = 1.0
MAX_WIDTH = 160


class ThumbnailTaker:
    def __init__(self, node: Node, cameras: Sequence[str], trace: TraceRecorder, *, interval_s: float = INTERVAL_S,
                 max_width: int = MAX_WIDTH) -> None:
        self.cameras = tuple(cameras)
        self.trace = trace
        self.interval_s = interval_s
        self.max_width = max_width
        self.subscribers: list[FrameSubscriber] = []
        if self.cameras:
            self.subscribers = [node.subscribe_frames(self.cameras), node.subscribe_frames(self.cameras, compressed=True)]
        self._next: dict[str, float] = dict.fromkeys(self.cameras, 0.0)
        self.taken = 0

    def poll(self, run_t: float) -> int:
        """Take the thumbnails that are due at run time ``run_t`` (s); returns how many were taken."""
        if not self.subscribers:
            return 0
        newest: dict[str, Image] = {}
        for sub in self.subscribers:  # read every time: the newest frame is all that stays queued
            for camera, image in sub.latest(0).items():
                if camera not in newest or image.stamp_ns > newest[camera].stamp_ns:
                    newest[camera] = image
        taken = 0
        for camera, image in newest.items():
            if run_t < self._next[camera]:
                continue
            try:
                rgb = to_rgb(image.encoding, image.width, image.height, image.row_stride, image.data, image.compressed)
            except PixelError:
                continue
            if rgb.shape[1] > self.max_width:
                height = max(1, round(rgb.shape[0] * self.max_width / rgb.shape[1]))
                rgb = cv2.resize(rgb, (self.max_width, height), interpolation=cv2.INTER_AREA)
            self.trace.thumbnail(camera, run_t, "image/jpeg", encode_jpeg(rgb, 80))
            self._next[camera] = run_t + self.interval_s
            taken += 1
        self.taken += taken
        return taken
