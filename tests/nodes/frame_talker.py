"""A real process publishing camera frames for bus tests.

    frame_talker.py stream RUN_DIR WIDTH HEIGHT ENCODING SECONDS
        frames of a known pattern (tests/nodes/frame_talker.pattern) every 20 ms,
        step = 0, 1, 2, ..., on the camera role's endpoint.
    frame_talker.py loop RUN_DIR SECONDS
        a 200 Hz control loop: a JointState on the robot PUB and a 640x480 RGB
        frame on the camera PUB each tick; prints {"ticks", "rate_hz", "rss_growth_mb"}.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import zmq

from bus.endpoints import Endpoints
from bus.frames import FramePublisher
from bus.images import PREFIX_ROOM, FrameBuffer
from bus.node import Node
from bus.topics import JOINT_STATE
from schemas import messages_pb2


def pattern(step: int, width: int, height: int) -> np.ndarray:
    """A smooth RGB image that differs per step (JPEG keeps it close)."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (x * 255 // max(1, width - 1) + step * 7) % 256
    img[..., 1] = (y * 255 // max(1, height - 1)) % 256
    img[..., 2] = (step * 40) % 256
    return img


def stream(run_dir: str, width: int, height: int, encoding: str, seconds: float) -> None:
    endpoints = Endpoints.for_run(Path(run_dir))
    ctx = zmq.Context()
    pub = FramePublisher(ctx, endpoints["camera"].pub, "talker")
    end = time.monotonic() + seconds
    step = 0
    while time.monotonic() < end:
        img = pattern(step, width, height)
        if encoding == "raw":
            buf = FrameBuffer(img.nbytes, np.empty(PREFIX_ROOM + img.nbytes, np.uint8))
            np.frombuffer(buf.pixels, np.uint8)[:] = img.reshape(-1)
            pub.publish_raw("wrist", buf, width=width, height=height, encoding="rgb8",
                            stamp_ns=1_000_000 * step, step=step)
        else:
            ok, data = cv2.imencode(".jpg" if encoding == "jpeg" else ".png", img[..., ::-1])
            assert ok
            pub.publish_compressed("wrist", data.tobytes(), fmt=encoding, stamp_ns=1_000_000 * step, step=step)
        step += 1
        time.sleep(0.02)
    pub.close()
    ctx.destroy(linger=0)


def loop(run_dir: str, seconds: float) -> None:
    endpoints = Endpoints.for_run(Path(run_dir))
    node = Node("robot", "looper", endpoints)
    frames = FramePublisher(node.ctx, endpoints["camera"].pub, "looper")
    image = pattern(0, 640, 480).reshape(-1)
    period = 0.005
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    next_tick = start
    ticks = 0
    while time.monotonic() - start < seconds:
        node.spin(0)
        node.publish(JOINT_STATE, messages_pb2.JointState(seq=ticks, stamp_ns=time.monotonic_ns()))
        buf = FrameBuffer(image.nbytes, np.empty(PREFIX_ROOM + image.nbytes, np.uint8))
        np.frombuffer(buf.pixels, np.uint8)[:] = image
        frames.publish_raw("wrist", buf, width=640, height=480, encoding="rgb8", stamp_ns=time.monotonic_ns(),
                           step=ticks)
        ticks += 1
        next_tick += period
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    print(json.dumps({"ticks": ticks, "rate_hz": ticks / elapsed, "rss_growth_mb": growth}), flush=True)
    frames.close()
    node.close()


if __name__ == "__main__":
    if sys.argv[1] == "stream":
        stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6]))
    else:
        loop(sys.argv[2], float(sys.argv[3]))
