"""The RoArm-M3 firmware's behaviour on its serial port, as a pure state machine.

``Firmware.handle`` takes one received line and returns the lines the arm
would print; ``advance`` moves the servos; ``feedback`` formats the T:1051
line. The emulator (``hw_node.emulator``) wraps this in a pseudo-terminal
with baud pacing and faults. Modelled on firmware 0.84 (docs/roarm_m3.md):

- T:102 / T:101 set joint targets (radians, firmware convention), servos
  move toward them at ``spd`` (steps/s, 0 = the ST3215's ~4.7 rad/s); acc is
  accepted but no ramp is modelled. Motion commands print nothing.
- T:105 prints one feedback line; print mode 2 streams one per loop pass.
- T:0 latches the emergency stop (servos hold where they are, motion
  commands are ignored) until T:999. T:100 drives to the init pose and blocks
  the loop while it does. T:210 switches torque (off: motion is ignored).
- T:605 sets the print mode; mode 1 prints debug text and echoes commands.
- Unpowered servos (USB power only): they do not move, and feedback reads
  the captured garbage pattern (+-pi, supply 0, torque switches 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hw_node import protocol
from roarm.kinematics import fk, fk_frames

SERVO_MAX_SPEED = 4.7  # rad/s, ST3215 at 12 V
INIT_POSE_SPEED = 1.0  # rad/s, T:100 moves slowly
SHOULDER_HEIGHT = 0.1221  # m, firmware origin above the URDF world origin
SUPPLY = 1200  # volts x100, a 12 V supply
# Firmware convention (g = pi - q_gripper): b, s, e, t, r, g.
INIT_POSE = np.array([0.0, 0.0, math.pi / 2, 0.0, 0.0, math.pi])
# Captured from a real arm with the servos unpowered (docs/roarm_m3.md).
UNPOWERED_ANGLES = np.array([3.1385, -1.5478, 0.0031, -1.5478, 3.1401, 1.0784])
FW_LOWER = protocol.to_firmware(np.array([-math.pi, -math.pi / 2, -1.0, -math.pi / 2, -math.pi, 1.5]))
FW_UPPER = protocol.to_firmware(np.array([math.pi, math.pi / 2, 2.95, math.pi / 2, math.pi, 0.0]))

BOOT_TEXT = (
    "RoArm-M3 firmware 0.84 (emulated)",
    "Servo ID:11 status: checked.",
    "Servo ID:12 status: checked.",
    "Servo ID:13 status: checked.",
    "Servo ID:14 status: checked.",
    "Servo ID:15 status: checked.",
    "Servo ID:16 status: checked.",
    "Servo ID:17 status: checked.",
    "All bus servos status checked.",
    "1",
)


def crlf(text: str) -> bytes:
    return text.encode() + b"\r\n"


@dataclass
class FirmwareConfig:
    print_mode: int = 2  # the mode after boot (2 on some builds)
    reports_supply: bool = True  # newer builds add v and torswitchB..G
    max_speed: float = SERVO_MAX_SPEED


@dataclass
class Firmware:
    config: FirmwareConfig = field(default_factory=FirmwareConfig)
    position: np.ndarray = field(default_factory=lambda: INIT_POSE.copy())
    target: np.ndarray = field(default_factory=lambda: INIT_POSE.copy())
    speed: np.ndarray = field(default_factory=lambda: np.full(6, SERVO_MAX_SPEED))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(6))
    print_mode: int = 2
    torque_on: bool = True
    estop: bool = False
    unpowered: bool = False
    busy: bool = False  # a blocking T:100 in progress
    commands: int = 0  # lines acted upon

    def __post_init__(self) -> None:
        self.print_mode = self.config.print_mode

    def boot(self) -> list[bytes]:
        """Power-on: text on the console, servos driven to the init pose."""
        self.print_mode = self.config.print_mode
        self.estop = False
        self.torque_on = True
        self.target = INIT_POSE.copy()
        self.speed = np.full(6, INIT_POSE_SPEED)
        return [crlf(text) for text in BOOT_TEXT]

    # -- input ---------------------------------------------------------------
    def handle(self, raw: bytes) -> list[bytes]:
        """One line from the host -> the lines the arm prints in reply."""
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return []
        out: list[bytes] = []
        if self.print_mode == 1:
            out.append(crlf(text))  # older builds echo each command in debug mode
        if len(raw) >= protocol.MAX_COMMAND_BYTES:
            return out + self._debug("input too long, dropped")
        try:
            cmd = json.loads(text)
        except ValueError:
            return out + self._debug("deserializeJson() failed")
        if not isinstance(cmd, dict) or not isinstance(cmd.get("T"), int):
            return out + self._debug("no command type")
        self.commands += 1
        return out + self._dispatch(cmd)

    def _debug(self, text: str) -> list[bytes]:
        return [crlf(text)] if self.print_mode == 1 else []

    def _dispatch(self, cmd: dict[str, Any]) -> list[bytes]:
        code = cmd["T"]
        if code == protocol.T_FEEDBACK_REQUEST:
            return [self.feedback()]
        if code == protocol.T_PRINT_MODE:
            mode = cmd.get("cmd")
            if mode in (0, 1, 2):
                self.print_mode = int(mode)
            return []
        if code == protocol.T_ESTOP:
            self.estop = True
            self.target = self.position.copy()
            return self._debug("emergency stop")
        if code == protocol.T_CLEAR_ESTOP:
            self.estop = False
            return self._debug("emergency flag cleared")
        if code == protocol.T_TORQUE:
            self.torque_on = cmd.get("cmd") != 0
            self.target = self.position.copy()
            return []
        if code == protocol.T_INIT_POSE:
            if self._can_move():
                self.target = INIT_POSE.copy()
                self.speed = np.full(6, INIT_POSE_SPEED)
                self.busy = True
            return []
        if code == protocol.T_ALL_JOINTS:
            return self._all_joints(cmd)
        if code == protocol.T_ONE_JOINT:
            return self._one_joint(cmd)
        return self._debug(f"unknown command T:{code}")

    def _can_move(self) -> bool:
        return self.torque_on and not self.estop and not self.unpowered

    def _speed(self, cmd: dict[str, Any]) -> float:
        spd = cmd.get("spd", 0)
        if not isinstance(spd, (int, float)) or spd <= 0:
            return self.config.max_speed
        return min(self.config.max_speed, float(spd) / protocol.STEPS_PER_RAD)

    def _all_joints(self, cmd: dict[str, Any]) -> list[bytes]:
        values = [cmd.get(key) for key in protocol.COMMAND_KEYS]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            return self._debug("T:102 needs base, shoulder, elbow, wrist, roll, hand")
        if self._can_move():
            self.target = np.clip(np.array(values, dtype=float), np.minimum(FW_LOWER, FW_UPPER),
                                  np.maximum(FW_LOWER, FW_UPPER))
            self.speed = np.full(6, self._speed(cmd))
        return []

    def _one_joint(self, cmd: dict[str, Any]) -> list[bytes]:
        joint, rad = cmd.get("joint"), cmd.get("rad")
        if not isinstance(joint, int) or not 1 <= joint <= 6 or not isinstance(rad, (int, float)) \
                or not math.isfinite(rad):
            return self._debug("T:101 needs joint 1..6 and rad")
        if self._can_move():
            i = joint - 1
            lo, hi = sorted((FW_LOWER[i], FW_UPPER[i]))
            self.target[i] = min(max(float(rad), lo), hi)
            self.speed[i] = self._speed(cmd)
        return []

    # -- time ------------------------------------------------------------------
    def advance(self, dt: float) -> None:
        """Move each servo toward its target at its speed for ``dt`` seconds."""
        if self.unpowered:
            self.velocity[:] = 0.0
            return
        if not self.torque_on:
            self.target = self.position.copy()
        step = np.clip(self.target - self.position, -self.speed * dt, self.speed * dt)
        self.position = self.position + step
        self.velocity = step / dt if dt > 0 else np.zeros(6)
        if self.busy and np.allclose(self.position, self.target, atol=1e-4):
            self.busy = False

    # -- output ----------------------------------------------------------------
    def feedback(self) -> bytes:
        """The T:1051 line for the current (or, unpowered, the garbage) state."""
        angles = UNPOWERED_ANGLES if self.unpowered else self.position
        q = protocol.to_bus(angles)
        tcp = fk(q)
        tool = fk_frames(q)[-1][:3, 0]
        tit = math.atan2(tool[2], math.hypot(tool[0], tool[1]))
        line: dict[str, Any] = {
            "T": protocol.T_FEEDBACK,
            "x": round(tcp[0] * 1000, 2),
            "y": round(tcp[1] * 1000, 2),
            "z": round((tcp[2] - SHOULDER_HEIGHT) * 1000, 2),
            "tit": round(tit, 2),
        }
        for key, value in zip(protocol.FEEDBACK_KEYS, angles):
            line[key] = round(float(value), 4)
        load = np.zeros(6) if self.unpowered else np.round(self.velocity / SERVO_MAX_SPEED * 300)
        for key, value in zip(protocol.LOAD_KEYS, load):
            line[key] = int(value)
        if self.config.reports_supply:
            on = 0 if self.unpowered or not self.torque_on else 1
            for key in protocol.TORQUE_SWITCH_KEYS:
                line[key] = on
            line["v"] = 0 if self.unpowered else SUPPLY
        return crlf(json.dumps(line, separators=(",", ":")))
