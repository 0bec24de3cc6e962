"""Camera frames on the bus: real processes, real sockets (docs/contracts.md, Cameras)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import msgpack
import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.envelope import Encoder, Reject
from bus.frames import FramePublisher, FrameSubscriber, frame_header_prefix
from bus.images import Image, RawReader, raw_head, read_raw, stamp, stamp_ns_of
from bus.node import Node
from bus.pubsub import Subscriber
from bus.sockets import send_frames
from bus.topics import QueuePolicy, compressed_topic, image_topic
from schemas import SCHEMA_MAJOR, SCHEMA_MINOR
from schemas.foxglove import CompressedImage, RawImage
from tests.conftest import ROOT, Procs
from tests.nodes.frame_talker import pattern

TALKER = str(ROOT / "tests" / "nodes" / "frame_talker.py")


def collect(sub: FrameSubscriber, count: int, timeout_s: float = 20.0) -> list[Image]:
    """``count`` frames of distinct steps (the subscriber keeps only the newest)."""
    seen: dict[int, Image] = {}
    end = time.monotonic() + timeout_s
    while len(seen) < count and time.monotonic() < end:
        for image in sub.latest(200).values():
            assert image.step is not None
            seen[image.step] = image
    assert len(seen) >= count, f"only {len(seen)} frames in {timeout_s} s"
    return list(seen.values())


@pytest.mark.parametrize("encoding", ["raw", "jpeg", "png"])
def test_640x480_frames_round_trip_between_processes(
    encoding: str, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context, procs: Procs
) -> None:
    rejects: list[Reject] = []
    sub = FrameSubscriber(zctx, [endpoints["camera"].pub], ["wrist"], compressed=encoding != "raw",
                          on_reject=rejects.append)
    procs.python(TALKER, "stream", str(run_dir), "640", "480", encoding, "30")
    images = collect(sub, 5)
    sub.close()
    for image in images:
        assert image.camera == "wrist" and image.src == "talker" and image.frame_id == "wrist"
        assert image.stamp_ns == 1_000_000 * image.step  # type: ignore[operator]
        want = pattern(image.step, 640, 480)  # type: ignore[arg-type]
        if encoding == "raw":
            assert (image.width, image.height, image.encoding, image.row_stride) == (640, 480, "rgb8", 1920)
            got = np.frombuffer(image.data, np.uint8).reshape(480, 640, 3)
            assert np.array_equal(got, want)
        else:
            assert image.compressed and image.encoding == encoding
            got = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            error = np.abs(got.astype(int) - want.astype(int)).mean()
            assert error < (4 if encoding == "jpeg" else 0.001), f"{encoding} mean error {error}"
    assert rejects == []


def bad_frames() -> list[tuple[str, str, bytes, str]]:
    """(topic, type, payload, what is wrong) for frames a receiver must refuse."""
    good = dict(width=4, height=2, encoding="rgb8", step=12)
    return [
        (image_topic("wrist"), "foxglove.RawImage", RawImage(**good, data=b"\0" * 23).SerializeToString(),
         "23 bytes"),
        (image_topic("wrist"), "foxglove.RawImage", RawImage(**good, data=b"\0" * 25).SerializeToString(),
         "25 bytes"),
        (image_topic("wrist"), "foxglove.RawImage",
         RawImage(width=4, height=2, encoding="rgb7", step=12, data=b"\0" * 24).SerializeToString(),
         "unknown raw encoding 'rgb7'"),
        (image_topic("wrist"), "foxglove.RawImage",
         RawImage(width=4, height=2, encoding="rgb8", step=8, data=b"\0" * 16).SerializeToString(),
         "row stride 8"),
        (image_topic("wrist"), "foxglove.RawImage",
         RawImage(width=0, height=2, encoding="rgb8", step=0, data=b"").SerializeToString(), "empty"),
        (compressed_topic("wrist"), "foxglove.CompressedImage",
         CompressedImage(format="gif", data=b"GIF89a").SerializeToString(), "unknown compressed format 'gif'"),
        (compressed_topic("wrist"), "foxglove.CompressedImage",
         CompressedImage(format="jpeg", data=b"\x89PNG\r\n\x1a\n").SerializeToString(), "like a jpeg"),
    ]


def test_malformed_frames_are_counted_and_rejected_with_a_reason(
    run_dir: Path, endpoints: Endpoints, zctx: zmq.Context
) -> None:
    """A node's frame subscriber and a generic subscriber both refuse them;
    the node counts reject.bad_image and a good frame after them still comes."""
    node = Node("policy", "viewer", endpoints, ctx=zctx)
    rejects: list[Reject] = []
    generic = Subscriber(zctx, [endpoints["camera"].pub], [image_topic("wrist"), compressed_topic("wrist")],
                         policy=QueuePolicy.QUEUE, on_reject=rejects.append)
    pub = FramePublisher(zctx, endpoints["camera"].pub, "camera")
    try:
        frames = node.subscribe_frames(["wrist"])
        compressed = node.subscribe_frames(["wrist"], compressed=True)

        def good_frame(step: int) -> Image:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # repeated: the first ones may go before the subscription
                pub.publish_raw("wrist", bytes(24), width=4, height=2, encoding="rgb8", stamp_ns=5, step=step)
                got = frames.latest(100)
                if got:
                    return got["wrist"]
            raise AssertionError("no good frame came through")

        assert good_frame(1).step == 1
        # The generic subscriber joins on its own connection: until a good
        # frame reaches it, a bad one may go out before it has subscribed.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pub.publish_raw("wrist", bytes(24), width=4, height=2, encoding="rgb8", stamp_ns=5, step=2)
            if generic.recv(100) is not None:
                break
        else:
            raise AssertionError("no good frame reached the generic subscriber")
        encoder = Encoder("camera")
        for topic, type_name, payload, what in bad_frames():
            # The camera PUB queues 16 frames per subscriber: drain the good
            # frames the generic subscriber has not read yet.
            while generic.recv(50) is not None:
                pass
            while frames.latest(50):
                pass
            before = node.counters["reject.bad_image"]
            send_frames(pub.socket, encoder.encode_raw(topic, type_name, payload))
            deadline = time.monotonic() + 10
            while node.counters["reject.bad_image"] == before and time.monotonic() < deadline:
                assert frames.latest(20) == {} and compressed.latest(20) == {}, what
            assert node.counters["reject.bad_image"] == before + 1, what
            deadline = time.monotonic() + 10
            while not any(what in r.detail for r in rejects) and time.monotonic() < deadline:
                generic.recv(20)
        image = good_frame(3)
        assert image.step == 3 and bytes(image.data) == bytes(24)
        details = " | ".join(r.detail for r in rejects)
        for _, _, _, what in bad_frames():
            assert what in details, f"no reject says {what!r}: {details}"
        assert {r.reason for r in rejects} == {"bad_image"}
    finally:
        generic.close()
        pub.close()
        node.close()


def run_loop(procs: Procs, run_dir: Path) -> dict[str, float]:
    proc = procs.python(TALKER, "loop", str(run_dir), "4")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def test_a_slow_frame_subscriber_does_not_slow_the_control_loop(
    run_dir: Path, tmp_path: Path, procs: Procs
) -> None:
    """200 Hz with a 640x480 frame every tick (184 MB/s): a viewer reading
    one frame per 0.5 s neither slows the loop nor grows its memory."""
    alone = run_loop(procs, run_dir)
    slow_dir = tmp_path / "s"
    slow_dir.mkdir()
    viewer = procs.python(str(ROOT / "tests" / "nodes" / "slow_viewer.py"), str(run_dir))
    assert viewer.stdout is not None and viewer.stdout.readline().strip() == b"ready"
    slowed = run_loop(procs, run_dir)
    assert viewer.poll() is None, "the slow viewer died"
    assert slowed["rate_hz"] >= 0.7 * alone["rate_hz"], (alone, slowed)
    # The frames PUB queues at most FRAME_HWM frames (15 MB) for the viewer.
    assert slowed["rss_growth_mb"] < alone["rss_growth_mb"] + 100, (alone, slowed)


def outcome(read: object) -> object:
    """What reading a payload gives: its fields (pixels as bytes) or the reject's reason and detail."""
    try:
        fields = read()  # type: ignore[operator]
    except Reject as reject:
        return reject.reason, reject.detail
    return (*fields[:-1], bytes(fields[-1]))


def test_frame_fast_paths_accept_and_refuse_exactly_what_the_full_parse_does() -> None:
    """The publisher's RawImage head is protobuf's own bytes, its envelope header plain msgpack; a
    RawReader that has seen a stream gives what read_raw gives, for good frames and bad ones."""
    for stamp_ns in (0, 5, 1_700_000_000_123_456_789):
        head = raw_head(width=320, height=240, encoding="rgb8", row_stride=960, stamp_ns=stamp_ns, frame_id="front",
                        size=230_400)
        fields = RawImage(timestamp=stamp(stamp_ns), frame_id="front", width=320, height=240, encoding="rgb8",
                          step=960)
        assert head == fields.SerializeToString() + b"\x32\x80\x88\x0e"  # data (field 6): 230,400 bytes
        fields.data = b"\1" * 230_400
        assert RawImage.FromString(head + b"\1" * 230_400) == fields
    header = frame_header_prefix("camera", "foxglove.RawImage")
    decoded = msgpack.unpackb(header + bytes.fromhex("cf" + "00" * 7 + "07" + "a3736571" + "cf" + "00" * 7 + "02"
                                                     + "a773656e745f6e73" + "cf" + "00" * 7 + "09"))
    assert decoded == {"src": "camera", "type": "foxglove.RawImage", "v": [SCHEMA_MAJOR, SCHEMA_MINOR], "step": 7,
                       "seq": 2, "sent_ns": 9}

    def frame(stamp_ns: int = 7, size: int = 24, data: bytes | None = None, **fields: object) -> memoryview:
        given = {"width": 4, "height": 2, "encoding": "rgb8", "row_stride": 12, "frame_id": "wrist", **fields}
        return memoryview(raw_head(stamp_ns=stamp_ns, size=size, **given) + (bytes(range(size)) if data is None
                                                                                 else data))  # type: ignore[arg-type]

    def reference(payload: memoryview) -> tuple[object, ...]:
        message, data = read_raw(payload)
        return (stamp_ns_of(message.timestamp), message.frame_id, message.encoding, message.width, message.height,
                message.step, data)

    reader = RawReader()
    cases = [
        frame(), frame(stamp_ns=0), frame(stamp_ns=1_700_000_000_123_456_789),  # good, then the fast path
        frame(size=24, data=bytes(23)), frame(size=24, data=bytes(25)),  # the remembered head, wrong pixel count
        frame(size=23), frame(size=25),  # a head that declares a wrong size
        frame(width=2, row_stride=6, size=12), frame(),  # another resolution, and back
        frame(encoding="rgb7"), frame(row_stride=8, size=16), frame(frame_id="other"),
        memoryview(b"\x0a\x7f" + bytes(frame())[2:]),  # a timestamp length past the message
        memoryview(b"\x0a\x03\x08\x80\x80" + bytes(frame())[4:]),  # a truncated timestamp
        memoryview(RawImage(width=4, height=2, encoding="rgb8", step=12, data=bytes(24)).SerializeToString()),
    ]
    for payload in cases:
        assert outcome(lambda: reader.read("camera/wrist/image", payload)) == outcome(lambda: reference(payload))
    assert reader.read("camera/wrist/image", frame(stamp_ns=42))[0] == 42
