"""``hil bag export --video DIR``: one MP4 per camera, for people who want to watch a run.

Each camera's frames (raw or JPEG/PNG, whichever the bag holds) are decoded
and written with OpenCV's ``mp4v`` codec, the one every OpenCV wheel can
write. The frame rate is the camera's rate on the robot's clock: a frame
that belongs to a robot step (its stamp equals that JointState's stamp, as a
simulator stamps it) is timed by that step's ``sim_time``, so a lockstep run
that went 20x faster than real time plays at its simulated speed; frames of
a real camera are timed by their capture stamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bus.errors import Failed
from bus.topics import JOINT_STATE
from policy_node.policy.pixels import PixelError
from tools.bag.frames import BagFrame, frames
from tools.bag.reader import BagReader

FOURCC = "mp4v"
DEFAULT_FPS = 10.0


class VideoError(Failed, RuntimeError):
    """No frames to export, or a video file OpenCV cannot write."""


@dataclass
class VideoResult:
    camera: str
    topic: str
    path: Path
    frames: int = 0
    fps: float = DEFAULT_FPS
    skipped: int = 0  # frames that did not decode
    size: tuple[int, int] = (0, 0)


def _state_times(reader: BagReader) -> dict[int, float]:
    """JointState stamp_ns -> sim_time (s), to time the frames of a simulator on its clock."""
    out: dict[int, float] = {}
    for message in reader.messages():
        if message.topic == JOINT_STATE:
            state = reader.decode(message)
            out[int(state.stamp_ns)] = float(state.sim_time)  # type: ignore[attr-defined]
    return out


def _fps(times: list[float]) -> float:
    """Frames per second from the frames' times (the median spacing: robust to a reset's jump)."""
    gaps = np.diff(np.asarray(times, dtype=float))
    gaps = gaps[gaps > 0]
    return float(1.0 / np.median(gaps)) if gaps.size else DEFAULT_FPS


def export_video(bag: Path, out_dir: Path, cameras: tuple[str, ...] = ()) -> list[VideoResult]:
    """Write ``<camera>.mp4`` (``<camera>_<topic suffix>.mp4`` when a camera has two streams) per camera."""
    reader = BagReader(bag)
    sim_time = _state_times(reader)
    grouped: dict[str, list[BagFrame]] = {}
    for frame in frames(reader, cameras):
        grouped.setdefault(frame.topic, []).append(frame)
    if not grouped:
        which = f" of {', '.join(cameras)}" if cameras else ""
        raise VideoError(f"no camera frames{which} in {bag}")
    per_camera: dict[str, int] = {}
    for topic in grouped:
        camera = topic.split("/")[1]
        per_camera[camera] = per_camera.get(camera, 0) + 1
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for topic, items in grouped.items():
        camera = topic.split("/")[1]
        name = camera if per_camera[camera] == 1 else f"{camera}_{topic.rsplit('/', 1)[1]}"
        results.append(_write(items, camera, topic, out_dir / f"{name}.mp4", sim_time))
    return results


def _write(items: list[BagFrame], camera: str, topic: str, path: Path, sim_time: dict[int, float]) -> VideoResult:
    paired = all(f.stamp_ns in sim_time for f in items)
    times = [sim_time[f.stamp_ns] if paired else f.stamp_ns / 1e9 for f in items]
    result = VideoResult(camera, topic, path, fps=_fps(times))
    writer: cv2.VideoWriter | None = None
    try:
        for frame in items:
            try:
                rgb = frame.rgb()
            except PixelError:
                result.skipped += 1
                continue
            if writer is None:
                result.size = (rgb.shape[1], rgb.shape[0])
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), result.fps, result.size)
                if not writer.isOpened():
                    raise VideoError(f"OpenCV cannot write {path} ({FOURCC}, {result.size[0]}x{result.size[1]})")
            if (rgb.shape[1], rgb.shape[0]) != result.size:
                rgb = cv2.resize(rgb, result.size, interpolation=cv2.INTER_AREA)
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
            result.frames += 1
    finally:
        if writer is not None:
            writer.release()
    if result.frames == 0:
        raise VideoError(f"none of the {len(items)} frames of {topic} decodes")
    return result
