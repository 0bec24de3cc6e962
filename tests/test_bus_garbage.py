"""Garbage into a real node process: it keeps answering and counts every reason."""

from __future__ import annotations

import time

import msgpack
import zmq

from bus.envelope import Encoder
from bus.endpoints import Endpoints
from bus.client import NodeClient
from bus.topics import GOAL
from schemas import SCHEMA_MAJOR, messages_pb2, services_pb2
from tests.conftest import Procs, wait_ready


def metrics(client: NodeClient) -> dict[str, float]:
    return dict(client.info().metrics)


def wait_metric(client: NodeClient, key: str, at_least: float, timeout_s: float = 20.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    while True:
        m = metrics(client)
        if m.get(key, 0) >= at_least or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def hdr(**kw: object) -> bytes:
    h: dict[str, object] = {"seq": 0, "src": "evil", "type": "roarm.v1.Goal", "sent_ns": 0, "v": [SCHEMA_MAJOR, 0]}
    h.update(kw)
    return msgpack.packb(h)


GARBAGE: dict[str, list[bytes]] = {
    "frame_count": [b"task/goal"],
    "bad_header": [b"task/goal", b"\xc1not msgpack", b""],
    "unknown_type": [b"task/goal", hdr(type="roarm.v1.Banana"), b""],
    "schema_version": [b"task/goal", hdr(v=[SCHEMA_MAJOR + 1, 0]), b""],
    "bad_payload": [b"task/goal", hdr(), b"\x0a\xff\xff\xff"],
    "oversize": [b"task/goal", hdr(), b"\x00" * (2 << 20)],
    "wrong_type": [b"task/goal", hdr(type="roarm.v1.JointState"), b""],
}


def test_subscriber_survives_and_counts_each_kind_of_garbage(
    procs: Procs, endpoints: Endpoints, zctx: zmq.Context, run_dir: object
) -> None:
    evil = zctx.socket(zmq.PUB)
    evil.bind(endpoints["runner"].pub)  # the node subscribes to the runner's PUB
    procs.python("tests/nodes/listener.py", str(run_dir))
    client = wait_ready(zctx, endpoints, "robot")
    good = Encoder("runner")
    # Slow joiner: send good goals until one arrives, so the garbage is not lost in transit.
    deadline = time.monotonic() + 20
    while metrics(client).get("received", 0) < 1 and time.monotonic() < deadline:
        evil.send_multipart(good.encode(GOAL, messages_pb2.Goal(id="hello")))
        time.sleep(0.05)
    for frames in GARBAGE.values():
        evil.send_multipart(frames)
    evil.send_multipart(good.encode(GOAL, messages_pb2.Goal(id="after")))
    before = metrics(client)["received"]
    m = wait_metric(client, "received", before + 1)
    for reason in GARBAGE:
        assert m.get(f"reject.{reason}", 0) >= 1, (reason, m)
    assert m["received"] >= before + 1
    assert client.ping()


def test_service_answers_garbage_requests_with_errors_and_keeps_serving(
    procs: Procs, endpoints: Endpoints, zctx: zmq.Context, run_dir: object
) -> None:
    procs.python("tests/nodes/listener.py", str(run_dir))
    client = wait_ready(zctx, endpoints, "robot")
    enc = Encoder("evil")
    requests = [
        [b"ping"],
        [b"ping", b"\xc1", b""],
        enc.encode("launch_missiles", services_pb2.PingRequest()),
        enc.encode("ping", services_pb2.InfoRequest()),
        [b"info", msgpack.packb({"seq": 0, "src": "e", "type": "roarm.v1.InfoRequest", "sent_ns": 0, "v": [99, 0]}), b""],
    ]
    for frames in requests:
        req = zctx.socket(zmq.REQ)
        req.connect(endpoints["robot"].rep)
        req.send_multipart(frames)
        assert req.poll(10_000), f"no reply to {frames!r}"
        reply = req.recv_multipart()
        assert msgpack.unpackb(reply[1])["type"] == "roarm.v1.Error"
        error = services_pb2.Error.FromString(reply[2])
        assert error.code and error.text
        req.close(0)
    m = metrics(client)
    for reason in ("frame_count", "bad_header", "unknown_method", "wrong_type", "schema_version"):
        assert m.get(f"reject.{reason}", 0) >= 1, (reason, m)
    assert client.ping()


def test_rejects_are_reported_as_rate_limited_events(
    procs: Procs, endpoints: Endpoints, zctx: zmq.Context, run_dir: object
) -> None:
    from bus.pubsub import Subscriber
    from bus.topics import EVENT, HEARTBEAT

    events = Subscriber(zctx, [endpoints["robot"].pub], [EVENT, HEARTBEAT])
    procs.python("tests/nodes/listener.py", str(run_dir))
    wait_ready(zctx, endpoints, "robot")
    assert events.recv(20_000) is not None  # a heartbeat: the subscription is live
    req = zctx.socket(zmq.REQ)
    req.connect(endpoints["robot"].rep)
    for _ in range(50):
        req.send_multipart([b"x"])
        assert req.poll(10_000)
        req.recv_multipart()
    got = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        env = events.recv(200)
        if env is not None and env.topic == EVENT:
            got.append(env.message)
    codes = [e.code for e in got]
    assert "reject.frame_count" in codes
    assert 1 <= codes.count("reject.frame_count") < 10  # 50 rejects, a handful of events
