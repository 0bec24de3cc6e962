"""``hil node camera`` as a real process, reading video files written here with OpenCV.

No camera is attached to the machines these tests run on: a video file as
``--device`` goes through the same OpenCV capture, conversion and publishing
as a USB camera (README, "Cameras").
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.frames import FrameSubscriber
from bus.images import Image
from bus.pubsub import Subscriber
from bus.topics import HEARTBEAT, QueuePolicy, calibration_topic
from schemas.foxglove import CameraCalibration
from tests.conftest import HIL, ROOT, Procs, poll_until, wait_ready
from tools.bench.rig import start_emulator

FRAMES = 12


def colour(i: int) -> tuple[int, int, int]:
    """The RGB colour of frame i: red, green and blue all differ, so a channel swap shows."""
    return (20 + 15 * i, 200 - 10 * i, 90)


def write_video(path: Path, width: int = 160, height: int = 120) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    for i in range(FRAMES):
        rgb = np.empty((height, width, 3), np.uint8)
        rgb[:] = colour(i)
        writer.write(np.ascontiguousarray(rgb[..., ::-1]))  # VideoWriter takes BGR
    writer.release()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "clip.avi"
    write_video(path)
    return path


def frames_of(sub: FrameSubscriber, count: int) -> list[Image]:
    seen: list[Image] = []

    def more() -> bool:
        seen.extend(sub.latest(200).values())
        return len(seen) >= count

    poll_until(more, f"{count} frames from the camera node", 30.0)
    return seen


def test_a_video_file_becomes_frames_with_host_timestamps(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                          zctx: zmq.Context, video: Path) -> None:
    sub = FrameSubscriber(zctx, [endpoints["camera"].pub], ["wrist"])
    calibrations = Subscriber(zctx, [endpoints["camera"].pub], [calibration_topic("wrist"), HEARTBEAT],
                              policy=QueuePolicy.QUEUE)
    procs.hil("node", "camera", "--device", str(video), "--name", "wrist", "--width", "160", "--height", "120",
              "--rate", "50", "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "camera", 60)
    images = frames_of(sub, 15)  # more than the file holds: it starts over
    now = time.monotonic_ns()
    for image in images:
        assert (image.width, image.height, image.encoding, image.compressed) == (160, 120, "rgb8", False)
        assert image.step is None and image.frame_id == "wrist" and image.src == "camera"
        assert now - 30 * 10**9 < image.stamp_ns <= image.recv_ns  # the host's monotonic clock at the grab
        pixels = np.frombuffer(image.data, np.uint8).reshape(120, 160, 3).reshape(-1, 3).mean(axis=0)
        nearest = min(range(FRAMES), key=lambda i: float(np.abs(pixels - colour(i)).max()))
        assert np.abs(pixels - colour(nearest)).max() < 6, f"{pixels} is none of the video's colours (RGB order?)"
    stamps = [image.stamp_ns for image in images]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    info = client.info()
    assert info.role == "camera" and info.backend == "opencv" and info.extra["source"] == "video file"
    assert info.metrics["frames"] >= 15 and info.metrics["video.restart"] >= 1
    assert info.extra["delivered"] == "160x120"
    # The node keeps publishing (50 Hz): read for a bounded time, not until it falls silent.
    kinds: set[type] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(kinds) < 2:
        envelope = calibrations.recv(100)
        if envelope is not None:
            kinds.add(type(envelope.message))
    assert CameraCalibration in kinds and len(kinds) == 2  # calibrations and the node's heartbeats
    assert client.ping().role == "camera"


def test_a_larger_video_is_resized_and_jpeg_encoded(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                                    zctx: zmq.Context, tmp_path: Path) -> None:
    path = tmp_path / "big.avi"
    write_video(path, 320, 240)
    sub = FrameSubscriber(zctx, [endpoints["camera"].pub], ["eye"], compressed=True)
    procs.hil("node", "camera", "--device", str(path), "--name", "eye", "--width", "80", "--height", "60",
              "--encoding", "jpeg", "--rate", "40", "--run-dir", str(run_dir))
    wait_ready(zctx, endpoints, "camera", 60)
    for image in frames_of(sub, 3):
        assert image.compressed and image.encoding == "jpeg"
        decoded = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == (60, 80, 3)


def test_a_missing_device_is_a_usage_error_without_a_traceback(run_dir: Path, tmp_path: Path) -> None:
    for device, why in ((str(tmp_path / "none.mp4"), "no camera or video file"),
                        (str(tmp_path), "cannot open")):
        done = subprocess.run([HIL, "node", "camera", "--device", device, "--run-dir", str(run_dir)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and why in done.stderr and "Traceback" not in done.stderr, done.stderr
    bad = subprocess.run([HIL, "node", "camera", "--device", "x.mp4", "--name", "Wrist/1", "--run-dir", str(run_dir)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "name" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.hil
@pytest.mark.slow
def test_a_scenario_on_the_real_arm_starts_the_camera_node_beside_it(request: pytest.FixtureRequest, procs: Procs,
                                                                     tmp_path: Path, video: Path) -> None:
    """smoke.yaml on --target hw (the firmware emulator, or --roarm-port) with a
    device camera: the runner starts ``hil node camera`` and waits for it."""
    port = request.config.getoption("--roarm-port")
    if not port:
        port = str(tmp_path / "arm")
        start_emulator(procs, Path(port), timeout_s=30)
    text = (ROOT / "scenarios" / "smoke.yaml").read_text()
    camera = f"  cameras:\n    - {{name: wrist, device: {video}, width: 96, height: 72, rate_hz: 20}}\n"
    scenario = tmp_path / "smoke.yaml"
    scenario.write_text(text.replace("  initial_pose: home\n", "  initial_pose: home\n" + camera, 1))
    out = tmp_path / "out"
    done = subprocess.run([HIL, "run", str(scenario), "--target", "hw", "--port", str(port), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    node = report["nodes"]["camera"]
    assert node["argv"][1:4] == ["node", "camera", "--device"] and node["stopped_by"] == "shutdown service"
    assert node["info"]["role"] == "camera" and node["info"]["metrics"]["frames"] > 5
