"""Topic names of the bus and how each one is queued.

ZMQ subscriptions match topic prefixes, so no topic may be a prefix of
another (tests/test_topics.py checks it); subscribers also compare the topic
frame exactly.
"""

from __future__ import annotations

import enum

JOINT_STATE = "robot/joint_state"
JOINT_COMMAND = "robot/joint_command"
GOAL = "task/goal"
CLOCK = "sim/clock"
HEARTBEAT = "node/heartbeat"
EVENT = "node/event"


class QueuePolicy(enum.Enum):
    """LATEST keeps only the newest message (a controller never wants a stale
    state or command); QUEUE keeps everything (recorders, goals, events)."""

    LATEST = "latest"
    QUEUE = "queue"


# topic -> (protobuf full name carried, default queue policy for consumers)
TOPICS: dict[str, tuple[str, QueuePolicy]] = {
    JOINT_STATE: ("roarm.v1.JointState", QueuePolicy.LATEST),
    JOINT_COMMAND: ("roarm.v1.JointCommand", QueuePolicy.LATEST),
    GOAL: ("roarm.v1.Goal", QueuePolicy.QUEUE),
    CLOCK: ("roarm.v1.Clock", QueuePolicy.LATEST),
    HEARTBEAT: ("roarm.v1.Heartbeat", QueuePolicy.QUEUE),
    EVENT: ("roarm.v1.Event", QueuePolicy.QUEUE),
}


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
    entry = TOPICS.get(topic)
    return entry[0] if entry else None
