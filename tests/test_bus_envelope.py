"""The envelope: what goes in comes out, and every kind of bad input is named."""

from __future__ import annotations

import math

import msgpack
import pytest

from bus.envelope import KNOWN_PREFIXES, Decoder, Encoder, Reject, decode
from bus.topics import JOINT_STATE, TOPICS
from bus import registry
from schemas import SCHEMA_MAJOR, messages_pb2


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
    for topic, (type_name, _policy) in TOPICS.items():
        assert registry.lookup(type_name) is not None, topic


def test_no_topic_is_a_prefix_of_another() -> None:
    topics = list(TOPICS)
    for a in topics:
        for b in topics:
            assert a == b or not b.startswith(a), f"{a!r} is a prefix of {b!r}: ZMQ would deliver both"


def test_nan_survives_the_wire_unchanged() -> None:
    """The bus carries NaN faithfully: judging it is the receiving node's job."""
    frames = Encoder("n").encode(JOINT_STATE, messages_pb2.JointState(position=[math.nan]))
    assert math.isnan(decode(frames).message.position[0])  # type: ignore[union-attr]


def test_header_is_a_plain_msgpack_map_with_the_contract_keys() -> None:
    """The cached layout is still the contract's map: any msgpack reader sees the five keys."""
    frames = Encoder("robot-sim").encode(JOINT_STATE, state(), sent_ns=2**63 + 5)
    assert msgpack.unpackb(frames[1]) == {"seq": 0, "src": "robot-sim", "type": "roarm.v1.JointState",
                                          "sent_ns": 2**63 + 5, "v": [SCHEMA_MAJOR, 0]}


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
