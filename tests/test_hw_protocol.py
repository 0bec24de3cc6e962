"""The RoArm-M3 line protocol and the bounded line reader: pure functions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_node import protocol
from hw_node.firmware import Firmware
from hw_node.lines import LineBuffer
from hw_node.protocol import Kind, parse_line

# The line docs/roarm_m3.md captured from an arm whose servos had no power.
UNPOWERED = (b'{"T":1051,"x":402.60,"y":-1.24,"z":-131.58,"tit":-4.66,"b":3.1385,"s":-1.5478,"e":0.0031,'
             b'"t":-1.5478,"r":3.1401,"g":1.0784,"tB":21,"tS":133,"tE":0,"tT":0,"tR":0,"tG":0,'
             b'"torswitchB":0,"torswitchS":0,"torswitchE":0,"torswitchT":0,"torswitchR":0,"torswitchG":0,"v":0}')


def feedback_line(b: float = 0.1, s: float = 0.2, e: float = 1.5, t: float = -0.3, r: float = 0.0,
                  g: float = 3.0, **extra: float) -> bytes:
    obj = {"T": 1051, "x": 300.0, "y": 0.0, "z": 200.0, "tit": 0.1, "b": b, "s": s, "e": e, "t": t, "r": r, "g": g,
           "tB": 10, "tS": -20, "tE": 0, "tT": 0, "tR": 0, "tG": 5, **extra}
    return json.dumps(obj).encode()


def test_feedback_converts_the_gripper_to_bus_convention() -> None:
    line = parse_line(feedback_line(g=math.pi - 0.4))
    assert line.kind is Kind.FEEDBACK and line.feedback is not None
    np.testing.assert_allclose(line.feedback.position, [0.1, 0.2, 1.5, -0.3, 0.0, 0.4])
    np.testing.assert_allclose(line.feedback.load[:2], [0.010, -0.020])
    assert line.feedback.xyz_mm == (300.0, 0.0, 200.0)
    assert line.feedback.supply is None and line.feedback.torque_switch is None
    assert protocol.plausibility(line.feedback) == ""


def test_joint_command_is_a_short_t102_line_in_firmware_convention() -> None:
    raw = protocol.joints_command(np.array([0.5, -0.25, 1.2, 0.1, -0.2, 1.0]), spd=500, acc=10)
    assert raw.endswith(b"\n") and not raw.endswith(b"\r\n")
    assert len(raw) < protocol.MAX_COMMAND_BYTES
    obj = json.loads(raw)
    assert obj["T"] == 102 and obj["spd"] == 500 and obj["acc"] == 10
    assert obj["base"] == 0.5 and obj["shoulder"] == -0.25 and obj["elbow"] == 1.2
    assert obj["hand"] == pytest.approx(math.pi - 1.0, abs=1e-4)


def test_commands_the_firmware_buffer_would_cut_are_refused() -> None:
    with pytest.raises(protocol.CommandTooLong):
        protocol.encode({"T": 102, "pad": "x" * 300})


def test_other_commands() -> None:
    assert json.loads(protocol.print_mode(0)) == {"T": 605, "cmd": 0}
    assert json.loads(protocol.torque(False)) == {"T": 210, "cmd": 0}
    assert json.loads(protocol.estop()) == {"T": 0}
    assert json.loads(protocol.clear_estop()) == {"T": 999}
    assert json.loads(protocol.feedback_request()) == {"T": 105}
    assert protocol.speed_steps(2 * math.pi) == 4096


@pytest.mark.parametrize(("raw", "kind"), [
    (b"", Kind.EMPTY),
    (b"   ", Kind.EMPTY),
    (b"All bus servos status checked.", Kind.TEXT),
    (b"Servo ID:11 status: failed.", Kind.TEXT),
    (b"Low operating voltage detected...", Kind.TEXT),
    (b"3.14", Kind.NUMBER),
    (b"-1", Kind.NUMBER),
    (b'{"T":102,"base":0,"shoulder":0,"elbow":1.57,"wrist":0,"roll":0,"hand":3.14,"spd":0,"acc":0}', Kind.ECHO),
    (b'{"T":605,"cmd":0}', Kind.ECHO),
    (b'{"T":1051,"x":12.5,"b":', Kind.BAD_JSON),
    (b'"e":1.5708,"t":0.0,"r":0.0,"g":3.1416,"v":1200}', Kind.PARTIAL),
    (b'{"T":1051,"b":"nan","s":null}', Kind.BAD_FEEDBACK),
    (b'{"T":1051,"b":true,"s":0,"e":0,"t":0,"r":0,"g":0}', Kind.BAD_FEEDBACK),
    (b'{"T":1051,"b":NaN,"s":0,"e":0,"t":0,"r":0,"g":0}', Kind.BAD_FEEDBACK),
    (b'{"T":"1051"}', Kind.OTHER_JSON),
    (b'{"T":4242}', Kind.OTHER_JSON),
    (b"[1,2,3]", Kind.OTHER_JSON),
    (b"\xff\xfe\x00garbage", Kind.TEXT),
])
def test_lines_are_classified(raw: bytes, kind: Kind) -> None:
    assert parse_line(raw).kind is kind


def test_the_captured_unpowered_line_is_not_trusted() -> None:
    line = parse_line(UNPOWERED)
    assert line.kind is Kind.FEEDBACK and line.feedback is not None
    assert "unpowered" in protocol.plausibility(line.feedback)


def test_unpowered_pattern_without_supply_reading_is_not_trusted() -> None:
    """Older builds send no v: base and roll both at +-pi give it away."""
    line = parse_line(feedback_line(b=3.1385, r=-3.1401, s=0.0, e=1.0, t=0.0, g=3.0))
    assert line.feedback is not None and line.feedback.supply is None
    assert "+-pi" in protocol.plausibility(line.feedback)


def test_angles_far_outside_the_limits_are_not_trusted() -> None:
    line = parse_line(feedback_line(s=2.5))
    assert line.feedback is not None
    assert "shoulder" in protocol.plausibility(line.feedback)


def test_the_emulated_firmware_speaks_what_the_driver_parses() -> None:
    firmware = Firmware()
    raw = firmware.feedback()
    assert raw.endswith(b"\r\n")
    line = parse_line(raw[:-2])
    assert line.kind is Kind.FEEDBACK and line.feedback is not None
    np.testing.assert_allclose(line.feedback.position, [0, 0, math.pi / 2, 0, 0, 0], atol=1e-4)
    assert line.feedback.supply == 1200 and line.feedback.torque_switch == (1,) * 6
    assert line.feedback.nbytes == len(raw)
    firmware.unpowered = True
    assert protocol.plausibility(parse_line(firmware.feedback()[:-2]).feedback) != ""  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_no_line_makes_the_parser_raise(raw: bytes) -> None:
    line = parse_line(raw)
    assert isinstance(line.kind, Kind)
    if line.kind is Kind.FEEDBACK:
        assert line.feedback is not None and np.all(np.isfinite(line.feedback.position))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["T", "b", "s", "e", "t", "r", "g", "v", "x", "tB"]),
                       st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.none(),
                                 st.booleans()), max_size=10))
def test_arbitrary_json_objects_never_raise(obj: dict) -> None:
    raw = json.dumps(obj).encode()
    line = parse_line(raw)
    if line.kind is Kind.FEEDBACK:
        assert line.feedback is not None and np.all(np.isfinite(line.feedback.position))


# -- the line buffer -------------------------------------------------------------------

def test_lines_split_across_reads_and_crlf() -> None:
    buf = LineBuffer()
    assert buf.feed(b'{"T":10') == []
    assert buf.feed(b'51}\r\nhello\r') == [b'{"T":1051}']
    assert buf.feed(b"\n\r\n") == [b"hello", b""]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=30), st.data())
def test_chunking_does_not_change_the_lines(lines: list[bytes], data: st.DataObject) -> None:
    lines = [line.replace(b"\n", b"").replace(b"\r", b"") for line in lines]
    stream = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    buf = LineBuffer(max_line=128)
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        out.extend(buf.feed(stream[start:end]))
    assert out == lines


def test_garbage_without_newlines_stays_bounded() -> None:
    buf = LineBuffer(max_line=256)
    for _ in range(1000):
        assert buf.feed(b"x" * 1000) == []
        assert buf.pending <= 256
    assert buf.stats.overlong == 1
    # the overlong line is dropped up to its newline; the stream recovers after it
    assert buf.feed(b"tail\r\n" + b'{"T":1051}\r\n') == [b'{"T":1051}']
