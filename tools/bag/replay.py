"""``hil bag replay``: publish a bag's messages back on the bus, on time or as fast as possible.

The replay stands in for the roles that published the replayed topics (by
default robot and runner: joint states, clock and goals), binding their PUB
endpoints, so a policy node cannot tell a bag from a live robot. When it
stands in for the robot it also answers the robot's ping/info/shutdown (the
policy node asks the robot's ``info`` before it starts) with the recorded
robot's info (the recorder keeps it), or the arm of roarm.joints with the
bag's control period for bags without it.

Headers carry the recorded sender and seq (so drops stay visible) and a fresh
sent_ns; payloads are the recorded bytes. Camera frames go out on the camera
role's PUB (queueing 16 frames per subscriber, bus/frames.py), with the
``step`` of the state whose stamp they carry. ZMQ's slow joiner: a PUB drops
what it sends before a subscriber's subscription has arrived, so replay
waits ``--wait-subscribers`` peers per endpoint (socket monitor) and a
``--settle`` delay before the first message, and the same delay after the
last one so queued messages leave before the sockets close.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import zmq
from zmq.utils.monitor import recv_monitor_message

from bus.endpoints import ROLES, Endpoints
from bus.envelope import Encoder
from bus.errors import Failed
from bus.node import Node
from bus.frames import FRAME_HWM
from bus.pubsub import PUB_HWM, Publisher
from bus.security import Security
from bus.reach import probe
from bus.service import ServiceClient, ServiceError, ServiceUnavailable
from bus.topics import EVENT, HEARTBEAT, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.joints import ROARM_M3
from schemas import services_pb2
from tools.bag.compat import ensure_compatible
from tools.bag.frames import frame_stamp, is_frame_topic, state_steps
from tools.bag.node_info import PREFIX, from_metadata
from tools.bag.period import control_period
from tools.bag.reader import BagReader

# Roles a replay stands in for by default (docs/contracts.md), and topics it
# leaves out by default: the recorded nodes' health is not the replay's.
DEFAULT_ROLES = ("robot", "runner", "camera")
SKIPPED_TOPICS = (HEARTBEAT, EVENT)
# In --max mode, serve services and heartbeats every this many messages.
_SPIN_EVERY = 2000


class ReplayError(Failed, RuntimeError):
    """Nothing to replay, or subscribers that never came: said plainly."""


@dataclass(frozen=True)
class LivePolicy:
    """A policy node that answers ping while a bag is replayed into it."""

    node: str
    endpoint: str

    def warning(self, states: int) -> str:
        return (f"a live policy ({self.node} at {self.endpoint}) will get these {states} states as fast as they can "
                f"be sent, and it keeps only the newest state (a controller never acts on a stale one): most "
                f"states will be dropped, not answered. Replay at the recorded timing (without --max) to drive it "
                f"state by state, or compare step by step with `hil bag check-policy BAG --model MODEL`.")


def live_policy(endpoints: Endpoints, ctx: zmq.Context, timeout_s: float = 1.5) -> LivePolicy | None:
    """The policy node of this run, when one listens at the policy's REP.

    A policy waiting for the robot's info answers ping only between its own
    calls, so a connection probe decides (fast when nothing listens) and a
    ping with a generous timeout only fetches its name.
    """
    endpoint, security = endpoints["policy"].rep, endpoints.security_for()
    if not probe(ctx, endpoint, security).handshake:
        return None
    client = ServiceClient(ctx, endpoint, "replay", timeout_s=timeout_s, retries=1, security=security)
    try:
        reply = client.call("ping", services_pb2.PingRequest())
        assert isinstance(reply, services_pb2.PingReply)
        name = reply.node
    except (ServiceUnavailable, ServiceError):
        name = "policy"
    finally:
        client.close()
    return LivePolicy(name, endpoint)


def count_states(reader: BagReader, topics: tuple[str, ...]) -> int:
    """How many joint states a replay with these topics would send."""
    channels = select_channels(reader, topics)
    return sum(1 for m in reader.messages() if m.channel.id in channels and m.topic == JOINT_STATE)


@dataclass(frozen=True)
class ReplayConfig:
    bag: Path
    endpoints: Endpoints
    # Speed factor on the recorded timing; None replays as fast as possible.
    rate: float | None = 1.0
    topics: tuple[str, ...] = ()
    wait_subscribers: int = 0
    wait_timeout_s: float = 10.0
    settle_s: float = 0.5
    name: str = "replay"


@dataclass
class ReplayResult:
    sent: int = 0
    elapsed_s: float = 0.0
    per_topic: Counter[str] = field(default_factory=Counter)
    roles: tuple[str, ...] = ()
    stop_reason: str = "end of bag"
    notes: list[str] = field(default_factory=list)
    # Commands a live policy published while we replayed states (None: not counted).
    answered: int | None = None

    @property
    def rate_hz(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def select_channels(reader: BagReader, topics: tuple[str, ...]) -> dict[int, str]:
    """channel id -> role to publish it as. Explicit topics pick any role's channels."""
    chosen: dict[int, str] = {}
    for channel_id, channel in reader.channels.items():
        role = channel.metadata.get("role", "")
        if topics:
            wanted = channel.topic in topics
        else:
            wanted = role in DEFAULT_ROLES and channel.topic not in SKIPPED_TOPICS
        if wanted:
            if role not in ROLES:
                raise ReplayError(f"channel {channel.topic} from {channel.metadata.get('src', '?')} has no "
                                  f"recorded role ({role!r}): was the bag written by hil bag record?")
            chosen[channel_id] = role
    if not chosen:
        have = sorted({c.topic for c in reader.channels.values()})
        raise ReplayError(f"nothing to replay from {reader.path}: "
                          f"{'no channel on ' + ', '.join(topics) if topics else 'no robot or runner topics'}"
                          f" (the bag has {', '.join(have) or 'no channels'})")
    return chosen


def _robot_info(reader: BagReader, dt: float) -> services_pb2.NodeInfo:
    """What the replay answers as the robot: the recorded robot's info when the bag kept it
    (joints, limits, dt), else the arm of roarm.joints with the bag's dt."""
    recorded = reader.metadata.get(PREFIX + "robot")
    if recorded:
        info = from_metadata(recorded)
        info.extra["recorded_backend"] = info.backend
    else:
        info = services_pb2.NodeInfo(joint_names=ROARM_M3.names, lower=ROARM_M3.lower, upper=ROARM_M3.upper,
                                     max_velocity=ROARM_M3.max_velocity, dt=dt)
    info.backend, info.mode = "replay", "replay"
    info.extra["bag"] = str(reader.path)
    return info


def _wait_for_peers(node: Node, sockets: dict[str, zmq.Socket], want: int, timeout_s: float) -> None:
    """Until every socket has ``want`` connected peers (handshakes done), serving services meanwhile."""
    monitors = {role: sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
                for role, sock in sockets.items()}
    peers = Counter[str]()
    deadline = time.monotonic() + timeout_s
    try:
        while any(peers[r] < want for r in sockets) and node.running:
            if time.monotonic() > deadline:
                short = ", ".join(f"{r} PUB has {peers[r]}" for r in sockets if peers[r] < want)
                raise ReplayError(f"waited {timeout_s:g} s for {want} subscriber(s) per endpoint: {short}")
            node.spin(timeout_ms=10)
            for role, monitor in monitors.items():
                while monitor.poll(0):
                    event = recv_monitor_message(monitor)
                    peers[role] += 1 if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED else -1
    finally:
        for role, sock in sockets.items():
            sock.disable_monitor()
            monitors[role].close(0)


def _copy(info: services_pb2.NodeInfo) -> services_pb2.NodeInfo:
    """A fresh copy per call: Node.info() adds its own fields to what it is given."""
    out = services_pb2.NodeInfo()
    out.CopyFrom(info)
    return out


def _pause(node: Node, seconds: float) -> None:
    """Wait, still answering services (a runner may ping us meanwhile)."""
    deadline = time.monotonic() + seconds
    while node.running and (left := deadline - time.monotonic()) > 0:
        node.spin(timeout_ms=max(1, min(50, int(left * 1000))))


def replay(config: ReplayConfig) -> ReplayResult:
    """Replay the bag; stops early on shutdown or SIGINT/SIGTERM."""
    reader = BagReader(config.bag).scan()
    channels = select_channels(reader, config.topics)
    report = ensure_compatible(reader, channels)
    roles = tuple(sorted(set(channels.values())))
    primary = "robot" if "robot" in roles else roles[0]
    dt = control_period(reader)
    items = _load(reader, channels)
    result = ReplayResult(roles=roles, notes=list(report.notes))
    # Standing in for the robot, answer as the robot; for other roles, say what we are.
    own_info = _robot_info(reader, dt) if primary == "robot" else services_pb2.NodeInfo(backend="replay",
                                                                                        mode="replay")
    node = Node(primary, config.name, config.endpoints, info=lambda: _copy(own_info))
    # --max sends faster than a decoding subscriber takes (on a busy machine its I/O thread gets
    # little CPU): queue the whole selection, already in memory, instead of dropping past PUB_HWM.
    hwm = max(PUB_HWM, len(items)) if config.rate is None else PUB_HWM
    if primary != "camera":  # a camera PUB keeps its few frames (bus/frames.py)
        node.publisher.socket.setsockopt(zmq.SNDHWM, hwm)  # before any subscriber's pipe exists
    publishers: dict[str, Publisher] = {primary: node.publisher}
    # Count what a live policy answers to the replayed states (unless we stand in for it).
    answers = node.subscribe("policy", [JOINT_COMMAND], policy=QueuePolicy.QUEUE) \
        if "policy" not in roles and any(item.topic == JOINT_STATE for item in items) else None
    role_endpoints = {r: (e.pub, e.rep) for r, e in config.endpoints.roles.items()}
    try:
        for role in roles:
            if role not in publishers:
                security = Security.for_roles(config.endpoints.security, role, role_endpoints)
                # camera frames: bus/frames.py; --max: the whole selection (see above)
                role_hwm = FRAME_HWM if role == "camera" else hwm
                publishers[role] = Publisher(node.ctx, config.endpoints[role].pub, config.name, hwm=role_hwm,
                                             security=security)
        node.install_signal_handlers()
        if config.wait_subscribers > 0:
            _wait_for_peers(node, {r: p.socket for r, p in publishers.items()}, config.wait_subscribers,
                            config.wait_timeout_s)
        _pause(node, config.settle_s)
        _publish(items, publishers, node, config.rate, result)
        _pause(node, config.settle_s)  # let queued messages leave before the sockets close
        result.stop_reason = "end of bag" if node.running else node.detail
        if answers is not None:
            result.answered = len(answers.drain())
    finally:
        for role, publisher in publishers.items():
            if role != primary:
                publisher.close()
        node.close()
    return result


@dataclass(frozen=True, slots=True)
class _Item:
    log_time: int
    role: str
    topic: str
    type_name: str
    src: str
    seq: int
    data: bytes
    step: int | None = None  # camera frames: the robot step they belong to


def _load(reader: BagReader, channels: dict[int, str]) -> list[_Item]:
    """The selected messages in file order, in memory: the send loop then costs
    a header and a send per message, not a parse of the file.

    A frame's envelope ``step`` is not in the bag (it keeps payloads): a frame
    stamped like a JointState (a simulator's) gets that state's seq again.
    """
    types = {cid: reader.schemas[reader.channels[cid].schema_id].name for cid in channels}
    items = [_Item(m.log_time, role, m.topic, types[m.channel.id], m.src, m.sequence, m.data)
             for m in reader.messages() if (role := channels.get(m.channel.id)) is not None]
    if any(is_frame_topic(item.topic) for item in items):
        steps = state_steps(reader)
        items = [replace(item, step=steps.get(stamp)) if (stamp := frame_stamp(item.topic, item.data)) is not None
                 else item for item in items]
    return items


def _publish(items: list[_Item], publishers: dict[str, Publisher], node: Node, rate: float | None,
             result: ReplayResult) -> None:
    """The replay loop: one recorded message, one send (after waiting for its time)."""
    encoders: dict[str, Encoder] = {}
    started = time.monotonic()
    first_log = items[0].log_time if items else 0
    for item in items:
        if rate is not None:
            due = started + (item.log_time - first_log) / 1e9 / rate
            while node.running and (left := due - time.monotonic()) > 0:
                node.spin(timeout_ms=min(50, int(left * 1000)))  # services and heartbeats while waiting
        elif result.sent % _SPIN_EVERY == 0:
            node.spin(0)
        if not node.running:
            break
        encoder = encoders.get(item.src)
        if encoder is None:
            encoder = encoders[item.src] = Encoder(item.src)
        publishers[item.role].send_frames(
            encoder.encode_raw(item.topic, item.type_name, item.data, seq=item.seq, step=item.step))
        result.sent += 1
        result.per_topic[item.topic] += 1
    result.elapsed_s = time.monotonic() - started
