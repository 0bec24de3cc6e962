"""`hil view` end to end: a real mock robot node, the view as its own process,
and a real WebSocket client speaking the Foxglove protocol
(serverInfo, advertise, subscribe, binary message data) that decodes what it receives with classes built from the advertised
schemas only.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from websockets.sync.client import connect

from bus.endpoints import Endpoints
from bus.node import Node
from bus.topics import GOAL
from schemas import messages_pb2
from tests.conftest import wait_ready
from tests.test_bag_scene import chain_to_world

# The protocol's subprotocol name: "foxglove.sdk.v1" in the SDK's server, "foxglove.websocket.v1" before it.
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]
WANTED = ("robot/joint_state", "viz/transforms", "/robot_description", "viz/goal", "viz/log")


def message_class(channel: dict[str, Any]) -> Any:
    assert channel["encoding"] == "protobuf"
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"])).file:
        pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))


def start_view(procs: Any, run_dir: Path) -> int:
    view = procs.hil("view", "--run-dir", str(run_dir), "--port", "0")
    deadline = time.monotonic() + 30
    text = b""
    while b"open in Foxglove" not in text:
        assert view.poll() is None and time.monotonic() < deadline, text.decode()
        text += view.stderr.read1(4096)  # type: ignore[union-attr]
    match = re.search(rb"ws://127\.0\.0\.1:(\d+)", text)
    assert match, text.decode()
    return int(match.group(1))


@pytest.mark.slow
def test_view_streams_a_live_sim_to_a_foxglove_protocol_client(procs: Any, zctx: Any, endpoints: Endpoints,
                                                              run_dir: Path) -> None:
    procs.hil("node", "sim", "--backend", "mock", "--mode", "realtime", "--dt", "0.02", "--run-dir", str(run_dir))
    wait_ready(zctx, endpoints, "robot")
    port = start_view(procs, run_dir)
    runner = Node("runner", "test-runner", endpoints)  # stands in for `hil run`: a goal and an event
    goal = messages_pb2.Goal(id="left", tolerance=0.01, timeout_s=5)
    goal.tcp.x, goal.tcp.y, goal.tcp.z = 0.3, 0.1, 0.2
    received: dict[str, list[tuple[int, Any]]] = {topic: [] for topic in WANTED}
    started = time.monotonic()
    try:
        with connect(f"ws://127.0.0.1:{port}", subprotocols=SUBPROTOCOLS, open_timeout=10) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol in SUBPROTOCOLS
            channels: dict[int, dict[str, Any]] = {}
            subscriptions: dict[int, tuple[str, Any]] = {}
            deadline = time.monotonic() + 60
            while any(len(v) < 3 for k, v in received.items() if k not in ("viz/goal", "viz/log")) or not (
                    received["viz/goal"] and received["viz/log"]):
                assert time.monotonic() < deadline, {k: len(v) for k, v in received.items()}
                runner.publish(GOAL, goal)
                runner.event(messages_pb2.WARNING, "test.event", "a warning from the test")
                runner.spin(0)
                try:
                    frame = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                if isinstance(frame, str):
                    op = json.loads(frame)
                    if op["op"] == "serverInfo":
                        assert op["name"] == "roarm-hil"
                    elif op["op"] == "advertise":
                        fresh = [c for c in op["channels"] if c["topic"] in WANTED and c["id"] not in channels]
                        for channel in fresh:
                            channels[channel["id"]] = channel
                            subscriptions[len(subscriptions) + 1] = (channel["topic"], message_class(channel))
                        if fresh:
                            ws.send(json.dumps({"op": "subscribe", "subscriptions": [
                                {"id": sid, "channelId": cid} for sid, cid in
                                zip(range(len(subscriptions) - len(fresh) + 1, len(subscriptions) + 1),
                                    [c["id"] for c in fresh])]}))
                    continue
                assert frame[0] == 0x01  # MessageData: opcode, subscription id, log time, payload
                sid, log_time = struct.unpack_from("<IQ", frame, 1)
                topic, cls = subscriptions[sid]
                received[topic].append((log_time, cls.FromString(frame[13:])))
    finally:
        runner.close()

    # The arm, as a client draws it: transforms that end at the TCP the robot reported.
    states = {int(m.stamp_ns): m for _t, m in received["robot/joint_state"]}
    matched = 0
    for _t, frames in received["viz/transforms"]:
        transforms = list(frames.transforms)
        stamp = transforms[0].timestamp.seconds * 1_000_000_000 + transforms[0].timestamp.nanos
        if stamp in states:
            tcp = chain_to_world(transforms, "hand_tcp")[:3, 3]
            assert np.allclose(tcp, list(states[stamp].tcp), atol=1e-9)
            matched += 1
    assert matched >= 1
    assert "<robot name=\"roarm_m3\">" in received["/robot_description"][0][1].data
    [entity] = received["viz/goal"][0][1].entities
    position = entity.spheres[0].pose.position
    assert (position.x, position.y, position.z) == pytest.approx((0.3, 0.1, 0.2))
    # Re-sent every second for late joiners, never per goal re-send (the runner repeats goals every 0.25 s).
    assert len(received["viz/goal"]) <= 1 + (time.monotonic() - started)
    log = received["viz/log"][0][1]
    assert log.name == "test-runner" and log.message.startswith("test.event")
