"""Camera frames in bags: which to record, JPEG at record time, and reading them back as pixels.

Why JPEG by default: a 320x240 RGB frame is 230 KB raw and ~10 KB as JPEG,
so an hour of one camera at 10 frames/s is 8 GB raw and ~0.4 GB as JPEG.
The recorder encodes each raw frame (``camera/<name>/image``) into a
``foxglove.CompressedImage`` on that camera's ``camera/<name>/compressed``
channel, keeping its timestamp and frame id; ``--raw-images`` stores the
raw bytes as they came (exact pixels: what ``check-policy`` needs to
reproduce a vision policy bit for bit). Depth and YUV frames are always kept
raw (JPEG is for 8-bit colour). Both message types are Foxglove's own, so
Foxglove's image panel shows either.

In a bag a frame is paired with its robot step by its timestamp: a
simulator stamps frame k with the ``stamp_ns`` of JointState k (the envelope
header's ``step`` is not stored: a bag keeps payloads).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from bus.envelope import Envelope, Reject
from google.protobuf.message import DecodeError

from bus.images import COMPRESSED_DATA_FIELD, RAW_DATA_FIELD, read_compressed, read_raw, split_data, stamp_ns_of
from bus.topics import JOINT_STATE, CALIBRATION_SUFFIX, COMPRESSED_SUFFIX, IMAGE_SUFFIX, camera_of, compressed_topic
from policy_node.policy.pixels import COLOUR_ENCODINGS, PixelError, encode_jpeg, scaled_intrinsics, to_rgb
from roarm.camera import CameraSpec
from schemas.foxglove import CameraCalibration, CompressedImage, RawImage
from schemas.messages_pb2 import JointState
from tools.bag.reader import BagMessage, BagReader

COMPRESSED_TYPE = "foxglove.CompressedImage"
RAW_TYPE = "foxglove.RawImage"
JPEG_QUALITY = 90


@dataclass(frozen=True)
class ImageSelection:
    """Which camera frame topics a recording keeps.

    ``wanted`` empty: every camera. Otherwise each entry is a camera name
    (all its frame topics) or a frame topic (``camera/wrist/image``).
    Calibrations are small and always kept for the cameras recorded.
    """

    wanted: tuple[str, ...] = ()
    raw: bool = False

    def keeps(self, topic: str) -> bool:
        parts = camera_of(topic)
        if parts is None:
            return True  # not a camera topic: the general --topics decides
        if not self.wanted:
            return True
        camera, suffix = parts
        if camera in self.wanted or topic in self.wanted:
            return True
        return suffix == CALIBRATION_SUFFIX and camera in self.cameras

    @property
    def cameras(self) -> frozenset[str]:
        """The cameras named, by name or through one of their topics."""
        return frozenset(parts[0] if (parts := camera_of(w)) else w for w in self.wanted)


def jpeg_envelope(envelope: Envelope, quality: int = JPEG_QUALITY) -> Envelope:
    """The raw frame of ``envelope`` as a JPEG CompressedImage on its camera's compressed topic.

    Returns ``envelope`` itself when it is not a raw colour frame (depth,
    YUV): those are kept as they came. Raises Reject for a malformed frame.
    """
    parts = camera_of(envelope.topic)
    if parts is None or parts[1] != IMAGE_SUFFIX or envelope.type != RAW_TYPE:
        return envelope
    raw, data = read_raw(memoryview(envelope.payload))
    if raw.encoding not in COLOUR_ENCODINGS:
        return envelope
    rgb = to_rgb(raw.encoding, raw.width, raw.height, raw.step, data)
    message = CompressedImage(format="jpeg", frame_id=raw.frame_id, data=encode_jpeg(rgb, quality))
    message.timestamp.CopyFrom(raw.timestamp)
    return Envelope(compressed_topic(parts[0]), envelope.seq, envelope.src, COMPRESSED_TYPE, envelope.sent_ns,
                    envelope.version, message.SerializeToString(), recv_ns=envelope.recv_ns, step=envelope.step)


@dataclass
class BagFrame:
    """One recorded frame: its camera, capture stamp, and a way to its pixels."""

    camera: str
    topic: str
    stamp_ns: int
    log_time: int
    compressed: bool
    encoding: str  # raw encoding or compressed format
    width: int  # 0 for compressed frames until decoded
    height: int
    row_stride: int
    data: bytes = field(repr=False)

    def rgb(self) -> np.ndarray:
        """``(height, width, 3)`` uint8 RGB pixels (PixelError when they cannot be had)."""
        return to_rgb(self.encoding, self.width, self.height, self.row_stride, self.data, self.compressed)


def is_frame_topic(topic: str) -> bool:
    parts = camera_of(topic)
    return parts is not None and parts[1] in (IMAGE_SUFFIX, COMPRESSED_SUFFIX)


def frame_of(message: BagMessage) -> BagFrame | None:
    """The frame a bag message holds; None for anything else or a frame that does not parse."""
    parts = camera_of(message.topic)
    if parts is None or parts[1] == CALIBRATION_SUFFIX:
        return None
    try:
        if parts[1] == IMAGE_SUFFIX:
            raw, data = read_raw(memoryview(message.data))
            return BagFrame(parts[0], message.topic, stamp_ns_of(raw.timestamp), message.log_time, False,
                            raw.encoding, raw.width, raw.height, raw.step, bytes(data))
        comp, data = read_compressed(memoryview(message.data))
        return BagFrame(parts[0], message.topic, stamp_ns_of(comp.timestamp), message.log_time, True,
                        comp.format, 0, 0, 0, bytes(data))
    except Reject:
        return None


def frame_stamp(topic: str, data: bytes) -> int | None:
    """The capture stamp of a frame message without touching its pixels; None when it is not a frame."""
    parts = camera_of(topic)
    if parts is None or parts[1] == CALIBRATION_SUFFIX:
        return None
    field_number = RAW_DATA_FIELD if parts[1] == IMAGE_SUFFIX else COMPRESSED_DATA_FIELD
    cls = RawImage if parts[1] == IMAGE_SUFFIX else CompressedImage
    try:
        head, _ = split_data(memoryview(data), field_number)
        return stamp_ns_of(cls.FromString(head).timestamp)
    except (Reject, DecodeError, ValueError):
        return None


def state_steps(reader: BagReader) -> dict[int, int]:
    """JointState stamp_ns -> seq over the whole bag: how a frame finds its robot step again."""
    steps: dict[int, int] = {}
    for message in reader.messages():
        if message.topic == JOINT_STATE:
            try:
                state = JointState.FromString(message.data)
            except DecodeError:
                continue
            steps.setdefault(int(state.stamp_ns), int(state.seq))
    return steps


def frames(reader: BagReader, cameras: Iterable[str] = ()) -> Iterator[BagFrame]:
    """Every frame of the bag in file order (of ``cameras`` only, when given)."""
    wanted = set(cameras)
    for message in reader.messages():
        if not is_frame_topic(message.topic):
            continue
        frame = frame_of(message)
        if frame is not None and (not wanted or frame.camera in wanted):
            yield frame


def resolution(frame: BagFrame) -> tuple[int, int]:
    """(width, height) of a frame (decodes a compressed one); (0, 0) when it does not decode."""
    if not frame.compressed:
        return frame.width, frame.height
    try:
        rgb = frame.rgb()
    except PixelError:
        return 0, 0
    return rgb.shape[1], rgb.shape[0]


class RecordedFrames:
    """The frames of a bag, paired with states as the policy node pairs them live (policy_node/frames.py).

    For a state: each camera's newest frame taken at or before the state's
    stamp (a simulator's frame of that very step carries the same stamp); its
    age is counted on the robot's clock when the frame belongs to a recorded
    state (sim_time difference), else by stamps. Too old or none: None, the
    live node held there.
    """

    def __init__(self, reader: BagReader, cameras: dict[str, float]) -> None:
        """``cameras``: camera name -> the oldest frame (s) the policy accepts."""
        self.cameras = cameras
        self.stamps: dict[str, list[int]] = {c: [] for c in cameras}
        self.items: dict[str, list[BagFrame]] = {c: [] for c in cameras}
        self.sim_time: dict[int, float] = {}
        self.steps: dict[int, int] = {}
        self.calibrations: dict[str, CameraCalibration] = {}
        self.specs: dict[str, CameraSpec] = {}  # the recorded robot's description of its cameras
        self.jpeg_from_raw = False
        for message in reader.messages():
            parts = camera_of(message.topic)
            if message.topic == JOINT_STATE:
                try:
                    state = JointState.FromString(message.data)
                except DecodeError:
                    continue
                self.sim_time.setdefault(int(state.stamp_ns), float(state.sim_time))
                self.steps.setdefault(int(state.stamp_ns), int(state.seq))
            elif parts is not None and parts[1] == CALIBRATION_SUFFIX and parts[0] in cameras:
                try:
                    self.calibrations[parts[0]] = CameraCalibration.FromString(message.data)
                except DecodeError:
                    continue
            elif is_frame_topic(message.topic):
                frame = frame_of(message)
                if frame is not None and frame.camera in cameras:
                    self.items[frame.camera].append(frame)
                    self.jpeg_from_raw |= "encoded_from" in message.channel.metadata
        for camera, items in self.items.items():
            items.sort(key=lambda f: f.stamp_ns)
            self.stamps[camera] = [f.stamp_ns for f in items]
        self._decoded: dict[str, tuple[int, np.ndarray]] = {}

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.items.values())

    def intrinsics(self, camera: str, pixels: np.ndarray) -> np.ndarray | None:
        """K of the camera's (last recorded) calibration at this frame's resolution, as the node gives it."""
        calibration = self.calibrations.get(camera)
        if calibration is None:
            return None
        return scaled_intrinsics(calibration.K, (calibration.width, calibration.height),
                                 (pixels.shape[1], pixels.shape[0]))

    def for_state(self, state: JointState) -> dict[str, tuple[BagFrame, np.ndarray]] | None:
        """camera -> (frame, RGB pixels) for ``state``; None when a camera has no usable frame."""
        out = {}
        stamp = int(state.stamp_ns)
        for camera, max_age in self.cameras.items():
            index = bisect.bisect_right(self.stamps[camera], stamp) - 1
            if index < 0:
                return None
            frame = self.items[camera][index]
            if frame.stamp_ns in self.sim_time and stamp in self.sim_time:
                age = self.sim_time[stamp] - self.sim_time[frame.stamp_ns]
            else:
                age = (stamp - frame.stamp_ns) / 1e9
            if age < 0 or age > max_age + 1e-9:
                return None
            cached = self._decoded.get(camera)
            if cached is None or cached[0] != index:
                try:
                    pixels = frame.rgb()
                except PixelError:
                    return None
                pixels.flags.writeable = False
                cached = self._decoded[camera] = (index, pixels)
            out[camera] = (frame, cached[1])
        return out
