"""``hil view``: the live bus of a run served to Foxglove over its WebSocket
protocol (the ``foxglove-sdk`` server).

Every bus topic is forwarded as it comes (raw protobuf, with the message's
schema), so the Raw Messages and Plot panels see joint states, commands,
goals and heartbeats; the scene that draws the arm (link transforms from the
measured joints, at most 30 per second of robot time; goal spheres, event
logs, the URDF) comes from the same ``SceneDeriver`` the recorder writes
into bags. The URDF is re-sent every
second, and so is the active goal's sphere, so a client that connects late
still gets the robot and the goal (the derived channels are advertised at
start, before anything flows). Camera frames
(issue 14) arrive like any other topic; a Foxglove image schema for them
belongs in ``SceneDeriver``.

The viewer is a bus client like ``hil bus echo``: it binds nothing on the
bus and can come and go while a run goes on.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

import foxglove
import zmq
from mcap_protobuf.schema import build_file_descriptor_set

from bus.errors import HilError
from bus import registry
from bus.endpoints import ROLES, Endpoints
from bus.envelope import Envelope, Reject
from bus.pubsub import Subscriber
from bus.topics import QueuePolicy
from tools.viz.scene import (GOAL_TOPIC, TOPICS, URDF_SCHEMA, URDF_TOPIC, SceneDeriver, VizMessage, schema_bytes,
                             urdf_message)

URDF_EVERY_S = 1.0
BATCH_S = 0.02


class ViewError(HilError, ValueError):
    """A view that cannot start as asked (address, port)."""


@dataclass(frozen=True)
class ViewConfig:
    endpoints: Endpoints
    host: str = "127.0.0.1"
    port: int = 8765
    name: str = "roarm-hil"
    insecure: bool = False  # serve on an address other than loopback (the protocol has no authentication)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LiveView:
    """Bus in, Foxglove channels out; ``pump`` moves what is waiting."""

    def __init__(self, config: ViewConfig, ctx: zmq.Context) -> None:
        if not is_loopback(config.host) and not config.insecure:
            raise ViewError(f"--host {config.host}: the Foxglove WebSocket protocol has no authentication, so "
                            "anyone who reaches that address sees the bus; serve on 127.0.0.1 (and tunnel, e.g. "
                            "ssh -L 8765:127.0.0.1:8765) or pass --insecure")
        self.context = foxglove.Context()
        try:
            self.server = foxglove.start_server(name=config.name, host=config.host, port=config.port,
                                                context=self.context)
        except RuntimeError as exc:
            raise ViewError(f"cannot serve on {config.host}:{config.port}: {exc}") from None
        endpoints = config.endpoints
        self.subscriber = Subscriber(ctx, [endpoints[r].pub for r in ROLES if r in endpoints.roles], (),
                                     policy=QueuePolicy.QUEUE, parse=False, on_reject=self._rejected,
                                     security=endpoints.security_for())
        self.scene = SceneDeriver()
        self.channels: dict[tuple[str, str], foxglove.Channel] = {}
        self.forwarded = 0
        self.rejected = 0
        self._next_urdf = 0.0
        self._goal: bytes | None = None  # the active goal's scene update, re-sent with the URDF
        for schema, topic in [*TOPICS.items(), (URDF_SCHEMA, URDF_TOPIC)]:
            self._channel(topic, schema, schema_bytes(schema)[1])

    @property
    def port(self) -> int:
        return self.server.port

    def url(self) -> str:
        return self.server.app_url() or f"ws://127.0.0.1:{self.port}"

    def _rejected(self, _reject: Reject) -> None:
        self.rejected += 1

    def _channel(self, topic: str, schema: str, data: bytes) -> foxglove.Channel:
        key = (topic, schema)
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = foxglove.Channel(
                topic, schema=foxglove.Schema(name=schema, encoding="protobuf", data=data),
                message_encoding="protobuf", context=self.context)
        return channel

    def _forward(self, envelope: Envelope) -> None:
        key = (envelope.topic, envelope.type)
        if key not in self.channels:
            cls = registry.lookup(envelope.type)
            if cls is None:
                return
            self._channel(envelope.topic, envelope.type, build_file_descriptor_set(cls).SerializeToString())
        self.channels[key].log(envelope.payload)
        self.forwarded += 1

    def _derived(self, message: VizMessage) -> None:
        if message.topic == URDF_TOPIC:
            return  # sent on its own schedule (late joiners)
        if message.topic == GOAL_TOPIC:
            self._goal = message.data
        self._channel(message.topic, message.schema, schema_bytes(message.schema)[1]).log(message.data)

    def pump(self, now: float | None = None) -> int:
        """Forward everything waiting; returns how many bus messages went out."""
        now = time.monotonic() if now is None else now
        if now >= self._next_urdf:
            self._next_urdf = now + URDF_EVERY_S
            self.channels[(URDF_TOPIC, URDF_SCHEMA)].log(urdf_message())
            if self._goal is not None:
                self.channels[(GOAL_TOPIC, "foxglove.SceneUpdate")].log(self._goal)
        batch = self.subscriber.drain()
        for envelope in batch:
            self._forward(envelope)
            for derived in self.scene.derive(envelope):
                self._derived(derived)
        return len(batch)

    def close(self) -> None:
        self.server.stop()
        self.subscriber.close()


def serve(view: LiveView, running: Callable[[], bool]) -> None:
    """Pump until ``running`` says stop."""
    while running():
        view.pump()
        time.sleep(BATCH_S)
