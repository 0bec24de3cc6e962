"""Topic names of the bus, what each carries, how it is queued, how large it may be.

ZMQ subscriptions match topic prefixes, so no topic may be a prefix of
another (tests/test_bus_envelope.py checks it); subscribers also compare the
topic frame exactly. Camera topics are made from a camera name
(``camera/<name>/image``); names are restricted to ``[a-z0-9_]`` so no camera
topic can be a prefix of another (no name holds a ``/``, and no suffix is a
prefix of another suffix).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from bus.errors import HilError

JOINT_STATE = "robot/joint_state"
JOINT_COMMAND = "robot/joint_command"
GOAL = "task/goal"
CLOCK = "sim/clock"
HEARTBEAT = "node/heartbeat"
EVENT = "node/event"

CAMERA_PREFIX = "camera/"
# The three topics of camera <name>: uncompressed frames, JPEG/PNG frames, calibration.
IMAGE_SUFFIX = "image"
COMPRESSED_SUFFIX = "compressed"
CALIBRATION_SUFFIX = "calibration"
CAMERA_NAME = re.compile(r"[a-z0-9_]{1,32}")
_CAMERA_TOPIC = re.compile(r"camera/([a-z0-9_]{1,32})/(image|compressed|calibration)")

# Payload size limits (bytes). A control message is a few hundred bytes; a
# frame may be 4K RGB (3840x2160x3 = 24.9 MB).
CONTROL_MAX_PAYLOAD = 64 << 10
IMAGE_MAX_PAYLOAD = 32 << 20


class QueuePolicy(enum.Enum):
    """LATEST keeps only the newest message (a controller never wants a stale
    state, command or frame); QUEUE keeps everything (recorders, goals, events)."""

    LATEST = "latest"
    QUEUE = "queue"


@dataclass(frozen=True)
class TopicSpec:
    """What one topic carries (protobuf full name), the default queue policy
    of its consumers, and the largest payload a receiver accepts on it."""

    type: str
    policy: QueuePolicy
    max_payload: int = CONTROL_MAX_PAYLOAD


# The fixed topics of the contract.
TOPICS: dict[str, TopicSpec] = {
    JOINT_STATE: TopicSpec("roarm.v1.JointState", QueuePolicy.LATEST),
    JOINT_COMMAND: TopicSpec("roarm.v1.JointCommand", QueuePolicy.LATEST),
    GOAL: TopicSpec("roarm.v1.Goal", QueuePolicy.QUEUE),
    CLOCK: TopicSpec("roarm.v1.Clock", QueuePolicy.LATEST),
    HEARTBEAT: TopicSpec("roarm.v1.Heartbeat", QueuePolicy.QUEUE),
    EVENT: TopicSpec("roarm.v1.Event", QueuePolicy.QUEUE),
}

CAMERA_SPECS: dict[str, TopicSpec] = {
    IMAGE_SUFFIX: TopicSpec("foxglove.RawImage", QueuePolicy.LATEST, IMAGE_MAX_PAYLOAD),
    COMPRESSED_SUFFIX: TopicSpec("foxglove.CompressedImage", QueuePolicy.LATEST, IMAGE_MAX_PAYLOAD),
    CALIBRATION_SUFFIX: TopicSpec("foxglove.CameraCalibration", QueuePolicy.LATEST),
}

# The largest payload any topic of the contract allows (subscribers to every topic).
LARGEST_PAYLOAD = max(s.max_payload for s in [*TOPICS.values(), *CAMERA_SPECS.values()])


class TopicNameError(HilError, ValueError):
    """A camera name that would make topics outside the contract."""


def check_camera_name(name: str) -> str:
    """``name`` if it can name a camera's topics, else a TopicNameError saying why."""
    if not CAMERA_NAME.fullmatch(name):
        raise TopicNameError(
            f"camera name {name!r}: use 1 to 32 of a-z, 0-9 and _ (it becomes part of topic names)"
        )
    return name


def image_topic(camera: str) -> str:
    return f"{CAMERA_PREFIX}{check_camera_name(camera)}/{IMAGE_SUFFIX}"


def compressed_topic(camera: str) -> str:
    return f"{CAMERA_PREFIX}{check_camera_name(camera)}/{COMPRESSED_SUFFIX}"


def calibration_topic(camera: str) -> str:
    return f"{CAMERA_PREFIX}{check_camera_name(camera)}/{CALIBRATION_SUFFIX}"


def camera_of(topic: str) -> tuple[str, str] | None:
    """(camera name, suffix) of a camera topic, None for any other topic."""
    if not topic.startswith(CAMERA_PREFIX):
        return None  # most topics: no pattern match (recorders ask for every message)
    match = _CAMERA_TOPIC.fullmatch(topic)
    return (match.group(1), match.group(2)) if match else None


def spec(topic: str) -> TopicSpec | None:
    """The spec of a topic of the contract (fixed or camera), None otherwise."""
    fixed = TOPICS.get(topic)
    if fixed is not None:
        return fixed
    if topic.startswith(CAMERA_PREFIX):
        parts = camera_of(topic)
        if parts is not None:
            return CAMERA_SPECS[parts[1]]
    return None


# topic -> the roles whose PUB carries it (docs/contracts.md); every role
# publishes heartbeats and events.
PUBLISHED_BY: dict[str, tuple[str, ...]] = {
    JOINT_STATE: ("robot",),
    JOINT_COMMAND: ("policy",),
    GOAL: ("runner",),
    CLOCK: ("robot",),
}


def expected_type(topic: str) -> str | None:
    """The protobuf full name a known topic carries, None for an unknown topic."""
    entry = spec(topic)
    return entry.type if entry else None
