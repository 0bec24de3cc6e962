"""The emulated firmware as a state machine (no pty): what it prints, how servos move."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hw_node import protocol
from hw_node.emulator import Fault, FaultError, Wire, garbage
from hw_node.firmware import INIT_POSE, SERVO_MAX_SPEED, Firmware, FirmwareConfig
from hw_node.lines import LineBuffer


def run(firmware: Firmware, seconds: float, dt: float = 0.005) -> None:
    for _ in range(int(round(seconds / dt))):
        firmware.advance(dt)


def test_boot_prints_text_and_drives_to_init() -> None:
    firmware = Firmware(FirmwareConfig(print_mode=2))
    lines = firmware.boot()
    assert all(line.endswith(b"\r\n") for line in lines)
    assert any(b"All bus servos status checked." in line for line in lines)
    np.testing.assert_allclose(firmware.target, INIT_POSE)


def test_t105_answers_one_feedback_line() -> None:
    firmware = Firmware()
    out = firmware.handle(protocol.feedback_request())
    assert len(out) == 1 and json.loads(out[0])["T"] == 1051


def test_t102_moves_servos_at_their_speed_and_prints_nothing() -> None:
    firmware = Firmware()
    target = np.array([1.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0])
    assert firmware.handle(protocol.joints_command(target)) == []
    run(firmware, 0.1)
    assert firmware.position[0] == pytest.approx(0.1 * SERVO_MAX_SPEED, abs=1e-6)
    run(firmware, 0.3)
    assert firmware.position[0] == pytest.approx(1.0)


def test_spd_slows_the_servos() -> None:
    firmware = Firmware()
    target = np.array([1.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0])
    firmware.handle(protocol.joints_command(target, spd=protocol.speed_steps(0.5)))
    run(firmware, 0.2)
    assert firmware.position[0] == pytest.approx(0.1, abs=0.002)


def test_estop_latches_until_cleared() -> None:
    firmware = Firmware()
    firmware.handle(protocol.estop())
    firmware.handle(protocol.joints_command(np.array([1.0, 0, math.pi / 2, 0, 0, 0])))
    run(firmware, 0.2)
    assert firmware.position[0] == 0.0
    firmware.handle(protocol.clear_estop())
    firmware.handle(protocol.joints_command(np.array([1.0, 0, math.pi / 2, 0, 0, 0])))
    run(firmware, 0.5)
    assert firmware.position[0] == pytest.approx(1.0)


def test_torque_off_ignores_motion_and_reports_switches() -> None:
    firmware = Firmware()
    firmware.handle(protocol.torque(False))
    firmware.handle(protocol.joints_command(np.array([1.0, 0, math.pi / 2, 0, 0, 0])))
    run(firmware, 0.2)
    assert firmware.position[0] == 0.0
    assert json.loads(firmware.feedback())["torswitchB"] == 0


def test_print_mode_one_echoes_and_explains() -> None:
    firmware = Firmware()
    firmware.handle(protocol.print_mode(1))
    out = firmware.handle(b'{"T":105')
    assert out[0] == b'{"T":105\r\n' and b"deserializeJson() failed" in out[1]


def test_init_pose_blocks_until_reached() -> None:
    firmware = Firmware()
    firmware.position = np.array([1.0, 0.0, math.pi / 2, 0.0, 0.0, math.pi])
    firmware.handle(b'{"T":100}\n')
    assert firmware.busy
    run(firmware, 1.2)
    assert not firmware.busy
    np.testing.assert_allclose(firmware.position, INIT_POSE)


def test_unpowered_servos_do_not_move_and_report_garbage() -> None:
    firmware = Firmware()
    firmware.unpowered = True
    firmware.handle(protocol.joints_command(np.array([1.0, 0, math.pi / 2, 0, 0, 0])))
    run(firmware, 0.2)
    assert firmware.position[0] == 0.0
    line = protocol.parse_line(firmware.feedback()[:-2])
    assert line.feedback is not None and line.feedback.supply == 0


def test_garbage_bursts_hold_every_kind_of_noise() -> None:
    import random

    burst = garbage(random.Random(1), 4000)
    buf = LineBuffer(max_line=1024)
    kinds = {protocol.parse_line(line).kind for line in buf.feed(burst)}
    assert buf.stats.overlong >= 1
    assert {protocol.Kind.NUMBER, protocol.Kind.BAD_JSON, protocol.Kind.BAD_FEEDBACK} <= kinds
    assert protocol.Kind.FEEDBACK not in kinds


def test_fault_descriptions() -> None:
    assert Fault.parse("unplug@5:2") == Fault("unplug", 5.0, 2.0)
    assert Fault.parse("garbage") == Fault("garbage", 0.0, 4000.0)
    with pytest.raises(FaultError, match="unknown fault"):
        Fault.parse("explode@1")
    with pytest.raises(FaultError, match="bad number"):
        Fault.parse("unplug@soon")


def test_the_wire_carries_115200_baud() -> None:
    wire = Wire(115200)
    now, sent = 0.0, 0
    while now < 1.0:
        n = wire.allowance(now)
        wire.used(n, now)
        sent += n
        now += 0.001
    assert 11000 <= sent <= 11600
