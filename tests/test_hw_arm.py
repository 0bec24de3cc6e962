"""The RoArm-M3 backend over pyserial's loop:// (what is written comes back):
print mode at connect, feedback parsing, stream detection, skipped lines counted."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from hw_node.arm import ArmConfig, RoArmM3
from hw_node.firmware import Firmware
from hw_node.link import LinkConfig


def loop_arm() -> tuple[RoArmM3, Counter[str]]:
    counters: Counter[str] = Counter()
    arm = RoArmM3(ArmConfig(LinkConfig("loop://")), counters)
    arm.connect()
    return arm, counters


def test_connect_sets_print_mode_zero_and_asks_for_feedback() -> None:
    arm, counters = loop_arm()
    assert arm.poll(0.0) is None
    assert counters["serial.echo"] == 2  # our own T:605 and T:105, looped back
    arm.close()


def test_feedback_becomes_the_latest_reading() -> None:
    arm, counters = loop_arm()
    arm.link.port.write(Firmware().feedback())  # type: ignore[union-attr]
    feedback = arm.poll(0.0)
    assert feedback is not None and arm.latest is feedback
    np.testing.assert_allclose(feedback.position[:3], [0, 0, np.pi / 2], atol=1e-4)
    assert arm.untrusted_why == "" and counters["feedback.lines"] == 1
    assert arm.feedback_bytes == feedback.nbytes
    arm.close()


def test_a_stream_pauses_polling_but_a_burst_of_late_replies_does_not() -> None:
    arm, counters = loop_arm()
    port = arm.link.port
    assert port is not None
    line = Firmware().feedback()
    # A burst: one reply to our request and three late ones, all at once.
    port.write(line * 4)
    arm.poll(1.0)
    assert counters["serial.unsolicited"] == 3
    assert arm.streaming(1.05)
    assert not arm.streaming(1.2)  # they stopped coming: not a stream
    # A real stream: a line every 25 ms for half a second, whether asked or not.
    now = 2.0
    requests = []
    for _ in range(20):
        port.write(line)
        arm.poll(now)
        before = arm.link.counters.tx_lines
        arm.request_feedback(now)
        requests.append(arm.link.counters.tx_lines - before)
        if requests[-1]:
            port.write(line)  # the arm answers the request besides streaming
        now += 0.025
    assert arm.streaming(now)
    assert sum(requests[-10:]) == 0, f"polled while the arm streams: {requests}"
    arm.close()


def test_skipped_lines_are_counted_by_kind() -> None:
    arm, counters = loop_arm()
    arm.poll(0.0)
    arm.link.port.write(b"All bus servos status checked.\r\n3.14\r\n{bad\r\n"  # type: ignore[union-attr]
                        + json.dumps({"T": 1051, "b": "x"}).encode() + b"\r\n")
    assert arm.poll(0.1) is None
    assert counters["serial.text"] == 1 and counters["serial.number"] == 1
    assert counters["serial.bad_json"] == 1 and counters["serial.bad_feedback"] == 1
    assert arm.firmware_text == ["All bus servos status checked."]
    arm.close()
