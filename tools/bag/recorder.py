"""The recorder node: subscribes to every role's PUB and writes what arrives into a bag.

It is a bus node of role "recorder" (answers ping/info/shutdown, sends
heartbeats) so the runner can start it, wait for it and stop it like any
other node. The loop reads top to bottom: serve services, drain each role's
subscriber into the bag, flush a chunk when due.
"""

from __future__ import annotations

import os
import time
from operator import itemgetter
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from bus.endpoints import ROLES, Endpoints
from bus.envelope import Envelope, Reject
from bus.node import Node, Severity
from bus.pubsub import Subscriber
from bus.topics import CAMERA_PREFIX, QueuePolicy
from schemas import services_pb2
from tools.bag.frames import ImageSelection, jpeg_envelope
from tools.bag.node_info import PREFIX, InfoProbe, as_metadata
from tools.bag.writer import BagWriteError, BagWriter, WriterConfig
from sim_node.urdf import roarm_m3_urdf
from tools.viz.scene import TRANSFORMS_HZ, URDF_ATTACHMENT, URDF_TOPIC, SceneDeriver, VizMessage

ROLE = "recorder"
# Roles whose ``info`` the bag keeps (model hash, dt, limits, randomization).
DESCRIBED_ROLES = ("robot", "policy")


@dataclass(frozen=True)
class RecorderConfig:
    output: Path
    endpoints: Endpoints
    provenance: dict[str, str]
    # Empty: every topic.
    topics: tuple[str, ...] = ()
    name: str = "recorder"
    writer: WriterConfig = field(default_factory=WriterConfig)
    heartbeat_period_s: float = 0.5
    # Seconds between drains; services (ping, shutdown) answer within this too.
    batch_s: float = 0.02
    # Added to the process's niceness before any socket exists (so ZMQ's I/O
    # thread inherits it): on a busy machine the loop being recorded gets the
    # CPU first, the recorder catches up from its deep queues.
    nice: int = 10
    # Add what Foxglove's 3D panel needs (link transforms, URDF, goal spheres, event logs).
    scene: bool = True
    # Link transforms per second of robot time at most (0: one per state); tools/viz/scene.py says why.
    scene_hz: float = TRANSFORMS_HZ
    # Which camera frames to keep, and whether raw frames are stored raw or as JPEG (tools/bag/frames.py).
    images: ImageSelection = field(default_factory=ImageSelection)


@dataclass(frozen=True)
class RecordResult:
    received: int
    dropped: int
    streams: dict[str, dict[str, int]]
    stop_reason: str
    error: str = ""


def record(config: RecorderConfig) -> RecordResult:
    """Record until shutdown, SIGINT/SIGTERM or a write error; the bag is always closed.

    Raises BagWriteError before subscribing when the output cannot be written,
    and zmq.ZMQError when the recorder's endpoints are taken (another recorder).
    """
    bag = BagWriter(config.output, config.provenance, config.writer)  # fails early, before any socket
    if config.nice:
        os.nice(config.nice)
    heard: set[str] = set()  # roles a message came from: the runner starts a run once every role is heard

    def describe() -> services_pb2.NodeInfo:
        info = services_pb2.NodeInfo(backend="mcap")
        info.extra["output"] = str(config.output)
        info.extra["topics"] = ",".join(config.topics) or "*"
        info.extra["image_topics"] = ",".join(config.images.wanted) or "*"
        info.extra["images"] = "raw" if config.images.raw else "jpeg"
        info.extra["heard"] = ",".join(sorted(heard))
        info.metrics["received"] = float(bag.drops.received)
        info.metrics["dropped"] = float(bag.drops.dropped)
        return info

    try:
        node = Node(ROLE, config.name, config.endpoints, info=describe, heartbeat_period_s=config.heartbeat_period_s)
    except (zmq.ZMQError, ValueError):
        bag.close()  # a valid, empty bag rather than a torn file
        raise
    subscribers: dict[str, Subscriber] = {
        role: node.subscribe(role, config.topics, policy=QueuePolicy.QUEUE, parse=False)
        for role in ROLES
        if role != ROLE and role in config.endpoints.roles
    }
    probe = InfoProbe(node.ctx, config.endpoints, DESCRIBED_ROLES, config.name, node.security)
    node.install_signal_handlers()
    scene = SceneDeriver(config.scene_hz) if config.scene else None
    error = ""
    try:
        while node.running:
            node.spin(timeout_ms=0)  # services and heartbeat; never waits here
            # only the sockets the spin's poll found readable: an empty one costs a raised zmq.Again
            ready = node.ready
            now_heard = _drain_into(bag, {role: sub for role, sub in subscribers.items() if sub.socket in ready},
                                    node, scene, config.images)
            heard |= now_heard
            for role, info in probe.ask(now_heard).items():
                bag.add_metadata(PREFIX + role, as_metadata(info))
            bag.flush_if_due()
            # Let messages pile up in the sockets' queues (100,000 deep) and take
            # them in batches: one wake-up per batch instead of one per message
            # keeps the recorder from stealing the CPU a lockstep loop needs.
            time.sleep(config.batch_s)
        _drain_into(bag, subscribers, node, scene, config.images)  # what arrived while stopping
        for derived in scene.final() if scene is not None else ():
            _write_derived(bag, derived)  # the last state's pose, when the rate bound skipped it
    except BagWriteError as exc:
        error = str(exc)
        node.event(Severity.ERROR, "record.write_failed", error)
        node.stop(error)
    finally:
        probe.close()
        try:
            bag.close()
        except BagWriteError as exc:
            error = error or str(exc)
        node.close()
    streams = {f"{topic} from {src}": s.as_dict() for (topic, src), s in sorted(bag.drops.streams.items())}
    return RecordResult(bag.drops.received, bag.drops.dropped, streams, node.detail, error)


def _drain_into(bag: BagWriter, subscribers: dict[str, Subscriber], node: Node,
                scene: SceneDeriver | None = None, images: ImageSelection | None = None) -> set[str]:
    """Write everything waiting, in the order the senders stamped it; returns the roles heard from.

    Within one batch the sockets are drained one after another, so the
    senders' monotonic stamps (one host) restore the order across roles.
    """
    images = images or ImageSelection()
    keeps = images.keeps
    # Per message only what it needs: camera topics alone are filtered and re-encoded, and the scene
    # sees only the topics it draws from (most messages are commands and states).
    batch = [(envelope.sent_ns, role, envelope) for role, sub in subscribers.items()
             for envelope in sub.drain(many=True)  # many: queued since the last batch, no ask per message
             if not envelope.topic.startswith(CAMERA_PREFIX) or keeps(envelope.topic)]
    batch.sort(key=itemgetter(0))  # by the senders' stamps alone
    write = bag.write
    raw = images.raw
    derives = scene.derives if scene is not None else frozenset()
    for _sent, role, received in batch:
        topic = received.topic
        envelope = received if raw or not topic.startswith(CAMERA_PREFIX) else _as_jpeg(received, node)
        gap = write(role, envelope, topic)
        if topic in derives:
            for derived in scene.derive(envelope):  # type: ignore[union-attr]
                _write_derived(bag, derived)
        if gap:
            node.counters["dropped"] += gap
            node.event(Severity.WARNING, "record.dropped",
                       f"{gap} message(s) of {envelope.topic} from {envelope.src} never arrived "
                       f"(seq jumped to {envelope.seq})", envelope.seq)
    return {role for _sent, role, _envelope in batch}


def _as_jpeg(envelope: Envelope, node: Node) -> Envelope:
    """A raw colour frame re-encoded as JPEG; anything else (and a malformed frame, counted) as it came."""
    try:
        return jpeg_envelope(envelope)
    except Reject as reject:
        node.reject(reject)
        return envelope


def _write_derived(bag: BagWriter, message: VizMessage) -> None:
    """A derived message; the URDF (the first one) also becomes a bag attachment."""
    bag.write_viz(message)
    if message.topic == URDF_TOPIC:
        bag.add_attachment(URDF_ATTACHMENT, "application/xml", roarm_m3_urdf(visual=True).encode(),
                           message.log_time_ns)
