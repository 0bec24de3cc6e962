"""Camera frames recorded and replayed: a real robot-with-camera process, a real recorder process,
bags read back with mcap's own reader and plain protobuf, videos read back with OpenCV."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from mcap.reader import make_reader

from bus.endpoints import Endpoints
from bus.frames import FrameSubscriber
from tests.conftest import HIL, ROOT, poll_until, wait_ready
from tests.nodes.camera_robot import image
from tests.test_bag_record import classes_from_schema

ROBOT = str(ROOT / "tests" / "nodes" / "camera_robot.py")
STEPS, EVERY = 60, 3


def record(procs, zctx, endpoints, run_dir: Path, *extra: str, robot_args: tuple[str, ...] = ()) -> Path:
    """Record the camera robot's whole run; returns the bag."""
    bag = run_dir / "run.mcap"
    recorder = procs.hil("bag", "record", "-o", str(bag), "--run-dir", str(run_dir), "--nice", "0", *extra)
    client = wait_ready(zctx, endpoints, "recorder")
    robot = procs.python(ROBOT, str(run_dir), "--steps", str(STEPS), "--every", str(EVERY), "--period", "0.02",
                         "--wait-start", "1.0", *robot_args)
    out, err = robot.communicate(timeout=60)
    assert robot.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["frames"] == STEPS // EVERY
    poll_until(lambda: int(client.info().metrics["received"]) >= STEPS + summary["frames"], "the recorder")
    client.shutdown("test")
    _, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err.decode()
    return bag


def read_independently(bag: Path) -> list[tuple[str, str, object]]:
    """(topic, schema name, decoded message) in file order, with mcap's reader and plain protobuf only."""
    out = []
    with open(bag, "rb") as handle:
        reader = make_reader(handle)
        classes: dict[int, dict[str, type]] = {}
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            if schema.id not in classes:
                classes[schema.id] = classes_from_schema(schema.data)
            out.append((channel.topic, schema.name, classes[schema.id][schema.name].FromString(message.data)))
    return out


def stamp_ns(message: object) -> int:
    return message.timestamp.seconds * 1_000_000_000 + message.timestamp.nanos  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize("raw", [False, True], ids=["jpeg", "raw"])
def test_frames_are_recorded_in_the_order_of_the_states(procs, zctx, endpoints, run_dir, raw):
    bag = record(procs, zctx, endpoints, run_dir, *(["--raw-images"] if raw else []))
    messages = read_independently(bag)
    states = [m for topic, _, m in messages if topic == "robot/joint_state"]
    topic = "camera/front/image" if raw else "camera/front/compressed"
    schema = "foxglove.RawImage" if raw else "foxglove.CompressedImage"
    frames = [(name, m) for t, name, m in messages if t == topic]
    assert [s.seq for s in states] == list(range(STEPS))
    assert len(frames) == STEPS // EVERY and {name for name, _ in frames} == {schema}
    assert not [t for t, _, _ in messages if t.startswith("camera/") and t != topic]
    by_stamp = {s.stamp_ns: s.seq for s in states}
    # Frame k carries state k's stamp, and frames come in the order of their states.
    steps = [by_stamp[stamp_ns(m)] for _, m in frames]
    assert steps == list(range(0, STEPS, EVERY))
    for step, (_, message) in zip(steps, frames, strict=True):
        expected = image(step, 160, 120)
        if raw:
            assert (message.width, message.height, message.encoding, message.step) == (160, 120, "rgb8", 480)
            assert np.array_equal(np.frombuffer(message.data, np.uint8).reshape(120, 160, 3), expected)
        else:
            assert message.format == "jpeg" and message.frame_id == "front"
            decoded = cv2.imdecode(np.frombuffer(message.data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            assert decoded.shape == (120, 160, 3)
            assert np.abs(decoded.astype(int) - expected).mean() < 4  # JPEG keeps it close
    size = sum(len(m.data) for _, m in frames)
    raw_size = (STEPS // EVERY) * 160 * 120 * 3
    assert size == raw_size if raw else size < raw_size / 4

    info = subprocess.run([HIL, "bag", "info", str(bag), "--json"], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    cameras = json.loads(info.stdout)["cameras"]
    assert len(cameras) == 1
    cam = cameras[0]
    assert (cam["camera"], cam["width"], cam["height"], cam["count"]) == ("front", 160, 120, STEPS // EVERY)
    assert cam["encoding"] == ("rgb8" if raw else "jpeg")
    assert 5 < cam["rate_hz"] < 1000 / (20 * EVERY) * 1.2  # every 3rd step of 20 ms: at most ~16.7 Hz
    text = subprocess.run([HIL, "bag", "info", str(bag)], capture_output=True, text=True, timeout=60).stdout
    assert "cameras:" in text and "160x120" in text


@pytest.mark.slow
def test_video_export_and_replay_of_frames(procs, zctx, endpoints, run_dir):
    bag = record(procs, zctx, endpoints, run_dir)
    out = run_dir / "video"
    result = subprocess.run([HIL, "bag", "export", str(bag), "--video", str(out)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(out / "front.mp4"))
    assert capture.isOpened()
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    fps = capture.get(cv2.CAP_PROP_FPS)
    ok, first = capture.read()
    capture.release()
    assert ok and first.shape == (120, 160, 3) and count == STEPS // EVERY
    assert fps == pytest.approx(1 / (0.02 * EVERY), rel=0.05)  # on the robot's clock (sim_time)
    assert np.abs(first[..., ::-1].astype(int) - image(0, 160, 120)).mean() < 12

    # Replay: the frames come back on the camera role's PUB with the step of their state.
    replay_dir = run_dir / "r"
    replay_dir.mkdir()
    replay_endpoints = Endpoints.for_run(replay_dir)
    sub = FrameSubscriber(zctx, [replay_endpoints["camera"].pub], ["front"], compressed=True)
    player = procs.hil("bag", "replay", str(bag), "--run-dir", str(replay_dir), "--wait-subscribers", "1",
                       "--topics", "camera/front/compressed", "--settle", "0.5", "--rate", "0.5")
    seen: dict[int, int] = {}

    def collect() -> bool:
        for frame in sub.latest(50).values():
            seen[frame.step] = frame.stamp_ns  # type: ignore[index]
        return player.poll() is not None

    poll_until(collect, "the replay to end", timeout_s=60)
    sub.close()
    out_text, err = player.communicate(timeout=10)
    assert player.returncode == 0, err.decode()
    assert "camera/front/compressed 20" in out_text.decode()
    assert seen and set(seen) <= set(range(0, STEPS, EVERY)) and len(seen) >= 10
