"""The envelope: what goes in comes out, and every kind of bad input is named."""

from __future__ import annotations

import math

import msgpack
import pytest

from bus.envelope import KNOWN_PREFIXES, Decoder, Encoder, Reject, decode
from bus.topics import (
    CAMERA_SPECS,
    CONTROL_MAX_PAYLOAD,
    IMAGE_MAX_PAYLOAD,
    JOINT_STATE,
    TOPICS,
    TopicNameError,
    calibration_topic,
    compressed_topic,
    image_topic,
    spec,
)
from bus import registry
from schemas import SCHEMA_MAJOR, SCHEMA_MINOR, messages_pb2


def state() -> messages_pb2.JointState:
    return messages_pb2.JointState(seq=7, names=["base"], position=[0.5], randomization_hash="ab")


def test_round_trip_keeps_header_and_payload() -> None:
    enc = Encoder("robot-sim")
    frames = enc.encode(JOINT_STATE, state(), sent_ns=123)
    env = decode(frames)
    assert (env.topic, env.seq, env.src, env.type, env.sent_ns) == (JOINT_STATE, 0, "robot-sim", "roarm.v1.JointState", 123)
    assert env.version[0] == SCHEMA_MAJOR
    assert env.message == state()


def test_sequence_numbers_count_per_topic() -> None:
    enc = Encoder("n")
    seqs = [decode(enc.encode(t, messages_pb2.Clock())).seq for t in ("sim/clock", "sim/clock", "node/event")]
    assert seqs == [0, 1, 0]


def test_parse_false_keeps_payload_bytes() -> None:
    frames = Encoder("n").encode(JOINT_STATE, state())
    env = decode(frames, parse=False)
    assert env.message is None and env.payload == state().SerializeToString()


def header(**overrides: object) -> bytes:
    fields: dict[str, object] = {"seq": 1, "src": "x", "type": "roarm.v1.JointState", "sent_ns": 1, "v": [SCHEMA_MAJOR, 0]}
    fields.update(overrides)
    return msgpack.packb(fields)


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"robot/joint_state"], "frame_count"),
        ([b"a", b"b", b"c", b"d"], "frame_count"),
        ([b"robot/joint_state", b"\xc1\xc1", b""], "bad_header"),
        ([b"robot/joint_state", msgpack.packb([1, 2]), b""], "bad_header"),
        ([b"robot/joint_state", header(seq="one"), b""], "bad_header"),
        # docs/contracts.md: integers must be msgpack integers (JavaScript encoders write floats above 2^32).
        ([b"robot/joint_state", header(sent_ns=float(2**40)), b""], "bad_header"),
        ([b"robot/joint_state", header(seq=1.0), b""], "bad_header"),
        ([b"robot/joint_state", header(type=".roarm.v1.JointState"), b""], "unknown_type"),
        ([b"\xff\xfe", header(), b""], "bad_header"),
        ([b"robot/joint_state", header(type="roarm.v1.Nope"), b""], "unknown_type"),
        ([b"robot/joint_state", header(v=[SCHEMA_MAJOR + 1, 0]), b""], "schema_version"),
        ([b"robot/joint_state", header(), b"\x0a\xff\xff"], "bad_payload"),
        ([b"robot/joint_state", header(), b"x" * ((1 << 20) + 1)], "oversize"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(frames: list[bytes], reason: str) -> None:
    with pytest.raises(Reject) as info:
        decode(frames)
    assert info.value.reason == reason
    assert info.value.detail
    decoder = Decoder()
    decoder.decode(Encoder("x").encode(JOINT_STATE, state()))  # a warm cache changes nothing
    with pytest.raises(Reject) as info:
        decoder.decode(frames)
    assert info.value.reason == reason


def test_header_as_the_contract_describes_it_is_accepted() -> None:
    """docs/contracts.md: unknown header keys are ignored, another minor version is accepted."""
    payload = state().SerializeToString()
    env = decode([b"robot/joint_state", header(v=[SCHEMA_MAJOR, 99], extra="ignored", sent_ns=2**62), payload])
    assert env.version == (SCHEMA_MAJOR, 99) and env.sent_ns == 2**62
    assert env.message == state()


def test_schema_version_reject_says_what_to_do() -> None:
    with pytest.raises(Reject, match="same roarm-hil major version"):
        decode([b"robot/joint_state", header(v=[SCHEMA_MAJOR + 1, 3]), b""])


def test_every_topic_type_is_registered() -> None:
    for topic, entry in [*TOPICS.items(), *CAMERA_SPECS.items()]:
        assert registry.lookup(entry.type) is not None, topic


# Camera names chosen to be prefixes of each other and of the suffixes.
CAMERAS = ["wrist", "wrist2", "w", "image", "calibration", "compressed", "c", "i"]


def test_no_topic_is_a_prefix_of_another() -> None:
    topics = list(TOPICS) + [make(c) for c in CAMERAS for make in (image_topic, compressed_topic, calibration_topic)]
    for a in topics:
        assert spec(a) is not None, a
        for b in topics:
            assert a == b or not b.startswith(a), f"{a!r} is a prefix of {b!r}: ZMQ would deliver both"


@pytest.mark.parametrize("name", ["", "Wrist", "wrist/image", "a b", "x" * 33, "wrist.cam"])
def test_a_camera_name_that_could_break_the_topic_rule_is_refused(name: str) -> None:
    with pytest.raises(TopicNameError, match="camera name"):
        image_topic(name)


def test_topic_size_limits_keep_control_small_and_let_frames_through() -> None:
    frame = b"x" * (640 * 480 * 3)
    encoder = Encoder("cam")
    assert decode(encoder.encode_raw(image_topic("wrist"), "foxglove.RawImage", frame), parse=False).payload == frame
    big = b"x" * (1920 * 1080 * 3)
    assert len(decode(encoder.encode_raw(compressed_topic("wrist"), "foxglove.CompressedImage", big),
                      parse=False).payload) == len(big)
    with pytest.raises(Reject) as info:
        decode(encoder.encode_raw(JOINT_STATE, "roarm.v1.JointState", b"x" * (CONTROL_MAX_PAYLOAD + 1)))
    assert info.value.reason == "oversize"
    with pytest.raises(Reject) as info:
        decode(encoder.encode_raw(image_topic("wrist"), "foxglove.RawImage", b"x" * (IMAGE_MAX_PAYLOAD + 1)))
    assert info.value.reason == "oversize"


def test_the_header_carries_the_step_of_a_frame() -> None:
    frames = Encoder("cam").encode_raw(image_topic("wrist"), "foxglove.RawImage", b"", step=41)
    assert decode(frames, parse=False).step == 41
    assert decode(Encoder("n").encode(JOINT_STATE, messages_pb2.JointState())).step is None


def test_nan_survives_the_wire_unchanged() -> None:
    """The bus carries NaN faithfully: judging it is the receiving node's job."""
    frames = Encoder("n").encode(JOINT_STATE, messages_pb2.JointState(position=[math.nan]))
    assert math.isnan(decode(frames).message.position[0])  # type: ignore[union-attr]


def test_header_is_a_plain_msgpack_map_with_the_contract_keys() -> None:
    """The cached layout is still the contract's map: any msgpack reader sees the five keys."""
    frames = Encoder("robot-sim").encode(JOINT_STATE, state(), sent_ns=2**63 + 5)
    assert msgpack.unpackb(frames[1]) == {"seq": 0, "src": "robot-sim", "type": "roarm.v1.JointState",
                                          "sent_ns": 2**63 + 5, "v": [SCHEMA_MAJOR, SCHEMA_MINOR]}


def test_decoder_with_a_warm_cache_decodes_and_rejects_as_decode_does() -> None:
    enc, decoder = Encoder("sim"), Decoder()
    for seq in range(3):  # the first goes the general way and is remembered, the rest hit
        env = decoder.decode(enc.encode(JOINT_STATE, state(), sent_ns=100 + seq))
        plain = decode(enc.encode_raw(JOINT_STATE, "roarm.v1.JointState", state().SerializeToString(),
                                      sent_ns=100 + seq, seq=seq))
        assert (env.topic, env.seq, env.src, env.type, env.sent_ns, env.version, env.message) == \
            (plain.topic, plain.seq, plain.src, plain.type, plain.sent_ns, plain.version, plain.message)
    header = enc.encode(JOINT_STATE, state())[1]
    bad = [
        ([b"robot/joint_state", header, b"\x0a\xff\xff"], "bad_payload"),
        ([b"\xff\xfe", header, b""], "bad_header"),
        ([b"robot/joint_state", header[:-9] + b"\xcb" + header[-8:], b""], "bad_header"),  # sent_ns as a float
        ([b"robot/joint_state", header], "frame_count"),
        ([b"robot/joint_state", header, b"x" * ((1 << 20) + 1)], "oversize"),
    ]
    for frames, reason in bad:
        with pytest.raises(Reject) as info:
            decoder.decode(frames)
        assert info.value.reason == reason, frames


def test_decoder_remembers_a_bounded_number_of_senders() -> None:
    decoder = Decoder()
    for i in range(KNOWN_PREFIXES + 50):
        env = decoder.decode(Encoder(f"sender-{i}").encode(JOINT_STATE, state()))
        assert env.src == f"sender-{i}"
    assert len(decoder._known) == KNOWN_PREFIXES  # past the bound: still decoded, the general way


def test_numbers_outside_uint64_still_encode_as_msgpack_integers() -> None:
    frames = Encoder("n").encode_raw(JOINT_STATE, "roarm.v1.JointState", b"", sent_ns=-5, seq=-1)
    env = Decoder().decode(frames)
    assert (env.seq, env.sent_ns) == (-1, -5)


def test_a_warm_decoder_keeps_the_contract_rules() -> None:
    """The cached header path still applies per-topic size limits, reads ``step`` and refuses float integers."""
    enc, decoder = Encoder("cam"), Decoder(parse=False)
    frame = b"x" * (640 * 480 * 3)
    for _ in range(2):  # the second of each goes the cached way
        decoder.decode(enc.encode(JOINT_STATE, state()))
        assert decoder.decode(enc.encode_raw(image_topic("wrist"), "foxglove.RawImage", frame)).payload == frame
    assert len(decoder._known) == 2
    for frames in (enc.encode_raw(JOINT_STATE, "roarm.v1.JointState", b"x" * (CONTROL_MAX_PAYLOAD + 1)),
                   enc.encode_raw(image_topic("wrist"), "foxglove.RawImage", b"x" * (IMAGE_MAX_PAYLOAD + 1))):
        with pytest.raises(Reject) as info:
            decoder.decode(frames)
        assert info.value.reason == "oversize"
    for step in (41, 42):
        assert decoder.decode(enc.encode_raw(image_topic("wrist"), "foxglove.RawImage", b"", step=step)).step == step
    assert decoder.decode(enc.encode_raw(image_topic("wrist"), "foxglove.RawImage", b"")).step is None
    header = enc.encode(JOINT_STATE, state())[1]
    float_seq = header[:-26] + b"\xcb" + header[-25:]  # seq tagged as a float64, same length
    with pytest.raises(Reject) as info:
        decoder.decode([JOINT_STATE.encode(), float_seq, b""])
    assert info.value.reason == "bad_header"
