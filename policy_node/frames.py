"""Which camera frame goes with which robot state, in the policy node.

Frames and states come through two sockets (the camera role's PUB and the
robot's), so arrival order says nothing; the frame's envelope ``step`` does:

- a simulator's frame belongs to a step (``step`` = that JointState's seq)
  and is published *before* that state. When state k arrives and the frame
  of step k is due (the camera renders every N steps: N is learnt from the
  steps of the frames seen this episode), the node waits for it, up to
  ``wait_s``; otherwise it uses the newest frame of an earlier step. The
  frame's age is then counted on the robot's clock: (k - step) * dt. So a
  lockstep run acts on the same frames every time: deterministic for a seed.
- a real camera's frame has no step: the newest frame is used, its age is
  the state's stamp minus the frame's capture stamp (one host's clock).

A frame older than the camera's ``max_age_s`` (or none at all) is refused
with a reason; the node then holds (``watchdog.stale_frame``). Frames of a
previous episode (stamped before the robot's reset) are never used.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bus.images import Image
from policy_node.policy.base import CameraFrame
from policy_node.policy.compat import CameraNeed
from policy_node.policy.pixels import PixelError, scaled_intrinsics, to_rgb
from roarm.camera import CameraSpec
from schemas.foxglove import CameraCalibration
from schemas.messages_pb2 import JointState

# Frames kept per camera: enough for frames that overtook the state they belong to.
HISTORY = 4
# How long to wait for a due frame whose camera period is not yet known (one frame seen this episode).
UNKNOWN_PERIOD_WAIT_S = 0.005

Poll = Callable[[int], dict[str, Image]]


@dataclass
class _Slot:
    need: CameraNeed
    history: deque[Image] = field(default_factory=lambda: deque(maxlen=HISTORY))
    period: int | None = None  # steps between frames, learnt
    last_step: int | None = None  # newest frame step seen this episode
    decoded: tuple[tuple[str, int, int], CameraFrame] | None = None  # (src, seq, stamp) -> frame

    def add(self, image: Image, episode_ns: int) -> None:
        if self.history and (self.history[-1].src, self.history[-1].seq) == (image.src, image.seq):
            return
        self.history.append(image)
        if image.step is not None and image.stamp_ns >= episode_ns:
            if self.last_step is not None and image.step > self.last_step:
                self.period = image.step - self.last_step
            if self.last_step is None or image.step > self.last_step:
                self.last_step = image.step


@dataclass(frozen=True)
class Pairing:
    """The frames for one state, or why there are none (``reason`` then says which camera and how)."""

    frames: dict[str, CameraFrame]
    reason: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


class FramePairing:
    """Keeps the recent frames of each needed camera and picks the one for each state."""

    def __init__(self, needs: tuple[CameraNeed, ...], poll: Poll, *, wait_s: float = 0.2,
                 calibration: Callable[[str], CameraCalibration | None] | None = None) -> None:
        """``poll(timeout_ms)`` returns the newest frame per camera that arrived (FrameSubscriber.latest)."""
        self.slots = {need.camera: _Slot(need) for need in needs}
        self.poll = poll
        self.wait_s = wait_s
        self.calibration = calibration or (lambda _camera: None)
        self.episode_ns = 0
        self.specs: dict[str, CameraSpec] = {}  # the robot's description of its cameras (pixels.camera_specs)
        self._last_seq: int | None = None
        self.waited = 0  # due frames waited for (info metrics)

    def take(self, timeout_ms: int = 0) -> bool:
        """File what arrived; True when anything did."""
        images = self.poll(timeout_ms)
        for camera, image in images.items():
            slot = self.slots.get(camera)
            if slot is not None:
                slot.add(image, self.episode_ns)
        return bool(images)

    def new_state(self, state: JointState) -> None:
        """Note an episode boundary (the robot's seq went back): older frames are the old episode's."""
        seq = int(state.seq)
        if self._last_seq is not None and seq < self._last_seq:
            self.episode_ns = int(state.stamp_ns)
            for slot in self.slots.values():
                slot.last_step = None  # (the camera's period outlives a reset)
                # Keep the frames of the new episode that came before its first state.
                slot.history = deque((i for i in slot.history if i.step is None or i.stamp_ns >= self.episode_ns),
                                     maxlen=HISTORY)
                for image in slot.history:
                    if image.step is not None and (slot.last_step is None or image.step > slot.last_step):
                        slot.last_step = image.step
        self._last_seq = seq

    def frames_for(self, state: JointState, dt: float) -> Pairing:
        """The frame of each camera for ``state`` (waiting briefly for a due simulated frame)."""
        self.new_state(state)
        self.take(0)
        frames: dict[str, CameraFrame] = {}
        for camera, slot in self.slots.items():
            image = self._pick(slot, state)
            stepped = image.step is not None if image is not None else self._stepped(slot)
            if stepped and (image is None or image.step < state.seq) and self._due(slot, state):  # type: ignore[operator]
                image = self._wait_for(slot, state, image)
            if image is None:
                return Pairing({}, f"no frame from camera {camera!r} for state {state.seq}")
            if image.step is not None and dt > 0:
                age = (int(state.seq) - image.step) * dt
                what = f"frame of step {image.step} is {age * 1e3:.0f} ms older than state {state.seq} (robot clock)"
            else:
                age = max(0.0, (int(state.stamp_ns) - image.stamp_ns) / 1e9)
                what = f"newest frame is {age * 1e3:.0f} ms older than state {state.seq}"
            if age > slot.need.max_age_s + 1e-9:
                return Pairing({}, f"camera {camera!r}: {what} (max_age {slot.need.max_age_s * 1e3:g} ms)")
            try:
                frames[camera] = self._decode(slot, image)
            except PixelError as exc:
                return Pairing({}, f"camera {camera!r}: frame {image.seq} cannot be read: {exc}")
        return Pairing(frames)

    def _pick(self, slot: _Slot, state: JointState) -> Image | None:
        """The newest frame usable for ``state``: of this episode, not of a later step (nor of the next
        episode, which a reset may already have started: stamped after the state)."""
        for image in reversed(slot.history):
            if image.step is None:
                return image
            if self.episode_ns <= image.stamp_ns <= state.stamp_ns and image.step <= state.seq:
                return image
        return None

    @staticmethod
    def _stepped(slot: _Slot) -> bool:
        """Whether the camera's frames belong to steps (a simulator's); unknown before any frame: assume so."""
        return not slot.history or slot.history[-1].step is not None

    def _due(self, slot: _Slot, state: JointState) -> bool:
        if slot.last_step is None or slot.period is None:
            return True
        return slot.last_step + slot.period <= state.seq

    def _wait_for(self, slot: _Slot, state: JointState, fallback: Image | None) -> Image | None:
        """Wait for the frame of this very step; the fallback when it does not come in time."""
        wait = self.wait_s if slot.period is not None else UNKNOWN_PERIOD_WAIT_S
        deadline = time.monotonic() + wait
        self.waited += 1
        while (left := deadline - time.monotonic()) > 0:
            self.take(max(1, int(left * 1000)))
            image = self._pick(slot, state)
            if image is not None and image.step == state.seq:
                return image
        return self._pick(slot, state) or fallback

    def _decode(self, slot: _Slot, image: Image) -> CameraFrame:
        key = (image.src, image.seq, image.stamp_ns)
        if slot.decoded is not None and slot.decoded[0] == key:
            return slot.decoded[1]
        rgb = to_rgb(image.encoding, image.width, image.height, image.row_stride, image.data, image.compressed)
        rgb.flags.writeable = False
        frame = CameraFrame(image.camera, rgb, image.stamp_ns, image.step, self._intrinsics(image.camera, rgb),
                            image.frame_id, self.specs.get(image.camera))
        slot.decoded = (key, frame)
        return frame

    def _intrinsics(self, camera: str, rgb: np.ndarray) -> np.ndarray | None:
        """K of the camera's calibration, scaled to this frame's resolution."""
        calibration = self.calibration(camera)
        if calibration is None:
            return None
        return scaled_intrinsics(calibration.K, (calibration.width, calibration.height), (rgb.shape[1], rgb.shape[0]))
