"""The RoArm-M3 JSON line protocol (firmware 0.84, see docs/roarm_m3.md).

Host -> arm: one compact JSON object per line, ``\\n``-terminated, under 256
bytes, no acknowledgement. Arm -> host: ``\\r\\n``-terminated lines, of which
only JSON objects with the expected ``T`` mean anything; boot text, debug
text, bare numbers and echoed commands are classified so the driver can count
and skip them.

Everything here is pure (no I/O), so the emulator and the driver share one
definition of every line and the tests can fuzz it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from bus.errors import HilError
from roarm.joints import ROARM_M3, JointSpec

BAUD = 115200
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop
MAX_COMMAND_BYTES = 256  # the firmware's line buffer

# T codes (host -> arm)
T_ESTOP = 0
T_INIT_POSE = 100
T_ONE_JOINT = 101
T_ALL_JOINTS = 102
T_FEEDBACK_REQUEST = 105
T_TORQUE = 210
T_PRINT_MODE = 605
T_CLEAR_ESTOP = 999
COMMAND_CODES = frozenset({T_ESTOP, T_INIT_POSE, T_ONE_JOINT, T_ALL_JOINTS, 104, 1041, T_FEEDBACK_REQUEST,
                           106, 107, 112, 121, 122, T_TORQUE, 600, T_PRINT_MODE, T_CLEAR_ESTOP})
# T codes (arm -> host)
T_FEEDBACK = 1051

# Firmware keys of the measured joints, in bus order (t is the wrist, g the gripper).
FEEDBACK_KEYS = ("b", "s", "e", "t", "r", "g")
LOAD_KEYS = ("tB", "tS", "tE", "tT", "tR", "tG")
TORQUE_SWITCH_KEYS = ("torswitchB", "torswitchS", "torswitchE", "torswitchT", "torswitchR", "torswitchG")
COMMAND_KEYS = ("base", "shoulder", "elbow", "wrist", "roll", "hand")
GRIPPER = 5
STEPS_PER_RAD = 4096 / (2 * math.pi)  # ST3215: 4096 steps per turn
# Below this supply reading (volts x100) the servos cannot be powered: the
# board runs from USB alone and every angle it reports is garbage.
MIN_SERVO_SUPPLY = 500
# A reading this close to +-pi on two or more joints is the unpowered pattern
# of firmware builds that do not report the supply (docs/roarm_m3.md).
PI_PATTERN_TOL = 0.005
# Measured angles this far outside the joint limits are not a pose.
LIMIT_MARGIN = 0.2


class CommandTooLong(HilError, ValueError):
    """A command line that the firmware's 256-byte buffer would cut."""


def encode(command: dict[str, Any]) -> bytes:
    """One command line: compact JSON and ``\\n``; refuses what the firmware would truncate."""
    line = json.dumps(command, separators=(",", ":")).encode() + b"\n"
    if len(line) >= MAX_COMMAND_BYTES:
        raise CommandTooLong(f"{len(line)}-byte command line; the firmware buffer holds {MAX_COMMAND_BYTES - 1}")
    return line


def to_firmware(position: np.ndarray) -> np.ndarray:
    """Bus radians -> firmware radians: identical except the gripper, g = pi - q."""
    out = np.array(position, dtype=float)
    out[GRIPPER] = math.pi - out[GRIPPER]
    return out


def to_bus(firmware: np.ndarray) -> np.ndarray:
    """Firmware radians -> bus radians (the conversion is its own inverse)."""
    return to_firmware(firmware)


def speed_steps(rad_per_s: float) -> int:
    """A joint speed as the firmware's ``spd`` (servo steps/s; 0 means maximum)."""
    return max(1, int(round(rad_per_s * STEPS_PER_RAD)))


def joints_command(position: np.ndarray, spd: int = 0, acc: int = 0) -> bytes:
    """T:102, all joints at once, from bus radians."""
    fw = to_firmware(position)
    command: dict[str, Any] = {"T": T_ALL_JOINTS}
    for key, value in zip(COMMAND_KEYS, fw):
        command[key] = round(float(value), 4)
    command["spd"] = int(spd)
    command["acc"] = int(acc)
    return encode(command)


def feedback_request() -> bytes:
    return encode({"T": T_FEEDBACK_REQUEST})


def print_mode(mode: int) -> bytes:
    return encode({"T": T_PRINT_MODE, "cmd": int(mode)})


def torque(enable: bool) -> bytes:
    return encode({"T": T_TORQUE, "cmd": 1 if enable else 0})


def estop() -> bytes:
    return encode({"T": T_ESTOP})


def clear_estop() -> bytes:
    return encode({"T": T_CLEAR_ESTOP})


def line_seconds(nbytes: int, baud: int = BAUD) -> float:
    """Time a line of ``nbytes`` takes on the wire (8N1)."""
    return nbytes * BITS_PER_BYTE / baud


class Kind(Enum):
    """What an incoming line turned out to be (counter keys: ``serial.<value>``)."""

    FEEDBACK = "feedback"
    ECHO = "echo"  # one of our own commands, echoed by print mode 1 of older builds
    TEXT = "text"  # boot or debug text
    NUMBER = "number"  # a bare number
    EMPTY = "empty"
    OTHER_JSON = "other_json"  # a JSON value without an expected T
    BAD_JSON = "bad_json"  # looked like JSON, did not parse
    PARTIAL = "partial"  # the tail of a JSON line (joined mid-line, or bytes lost)
    BAD_FEEDBACK = "bad_feedback"  # T:1051 with missing or non-numeric joints


@dataclass(frozen=True)
class Feedback:
    """One T:1051 line, converted to bus conventions."""

    position: np.ndarray  # rad, bus convention, bus joint order
    load: np.ndarray  # fraction of stall torque, signed
    xyz_mm: tuple[float, float, float] | None
    tit: float | None
    supply: float | None  # volts x100 when the build reports it
    torque_switch: tuple[int, ...] | None  # per joint, when reported
    nbytes: int  # line length on the wire including \r\n


@dataclass(frozen=True)
class Line:
    kind: Kind
    feedback: Feedback | None = None
    code: int | None = None  # the T of a JSON object
    text: str = ""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def parse_line(raw: bytes) -> Line:
    """Classify one line (without its ``\\r\\n``); never raises."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return Line(Kind.EMPTY)
    if not text.startswith(("{", "[")):
        if text.endswith("}") or '":' in text:
            return Line(Kind.PARTIAL, text=text[:200])
        try:
            float(text)
        except ValueError:
            return Line(Kind.TEXT, text=text[:200])
        return Line(Kind.NUMBER, text=text)
    try:
        obj = json.loads(text)
    except ValueError:
        return Line(Kind.BAD_JSON, text=text[:200])
    if not isinstance(obj, dict):
        return Line(Kind.OTHER_JSON, text=text[:200])
    code = obj.get("T")
    if isinstance(code, bool) or not isinstance(code, int):
        return Line(Kind.OTHER_JSON, text=text[:200])
    if code == T_FEEDBACK:
        feedback = _feedback(obj, len(raw) + 2)
        if feedback is None:
            return Line(Kind.BAD_FEEDBACK, code=code, text=text[:200])
        return Line(Kind.FEEDBACK, feedback=feedback, code=code)
    if code in COMMAND_CODES:
        return Line(Kind.ECHO, code=code, text=text[:200])
    return Line(Kind.OTHER_JSON, code=code, text=text[:200])


def _feedback(obj: dict[str, Any], nbytes: int) -> Feedback | None:
    joints = [_number(obj.get(key)) for key in FEEDBACK_KEYS]
    if any(value is None or not math.isfinite(value) for value in joints):
        return None
    loads = [_number(obj.get(key)) for key in LOAD_KEYS]
    load = np.array([0.0 if v is None or not math.isfinite(v) else v / 1000.0 for v in loads])
    xyz = [_number(obj.get(key)) for key in ("x", "y", "z")]
    xyz_mm = None if any(v is None for v in xyz) else (xyz[0], xyz[1], xyz[2])
    switches = [obj.get(key) for key in TORQUE_SWITCH_KEYS]
    torque_switch = None
    if all(isinstance(v, int) and not isinstance(v, bool) for v in switches):
        torque_switch = tuple(int(v) for v in switches)  # type: ignore[arg-type]
    return Feedback(
        position=to_bus(np.array(joints, dtype=float)),
        load=load,
        xyz_mm=xyz_mm,  # type: ignore[arg-type]
        tit=_number(obj.get("tit")),
        supply=_number(obj.get("v")),
        torque_switch=torque_switch,
        nbytes=nbytes,
    )


def plausibility(feedback: Feedback, spec: JointSpec = ROARM_M3) -> str:
    """Why this reading cannot be a real pose ("" when it can).

    With only USB power the servos do not answer and the firmware reports
    angles at +-pi (or stale ones) and, on builds that report it, a supply
    of 0. Publishing such a state would make a policy chase a phantom arm.
    """
    if feedback.supply is not None and feedback.supply < MIN_SERVO_SUPPLY:
        return f"servo supply reads {feedback.supply / 100:.2f} V: servos unpowered?"
    fw = to_firmware(feedback.position)
    at_pi = int(np.sum(np.abs(np.abs(fw[[0, 4]]) - math.pi) < PI_PATTERN_TOL))
    if at_pi >= 2:
        return "base and roll both read +-pi: servos unpowered?"
    lower = np.asarray(spec.lower) - LIMIT_MARGIN
    upper = np.asarray(spec.upper) + LIMIT_MARGIN
    outside = [name for name, q, lo, hi in zip(spec.names, feedback.position, lower, upper) if not lo <= q <= hi]
    if outside:
        return f"{', '.join(outside)} outside the joint limits: servos unpowered?"
    return ""
