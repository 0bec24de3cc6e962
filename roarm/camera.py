"""What a camera of the arm's scene is: ``CameraSpec``, its compact syntax, its geometry.

One description serves every side of a run, so it lives below the node
packages: the sim node renders it (sim_node/camera.py for MuJoCo,
sim_node/isaac_camera.py for Isaac Sim), a scenario declares it
(``robot.cameras``), the camera node publishes a real one
(``device``), and a vision policy back-projects pixels with its pose and
intrinsics (``world_pose``, ``intrinsics``), which the robot also reports in
``info.extra["cameras"]`` (``to_dict`` / ``from_dict``).

Frames and conventions:

- ``mount`` is ``world`` or a body of the arm (``base_link``, ``link1`` ..
  ``link5``, ``gripper_link``). A body's frame is the MJCF's
  (sim_node/models/roarm_m3.xml): at q = 0 every body frame is aligned with
  the world (x forward, z up) at the body's origin, and it turns with its
  joint. ``link5`` is the hand: its +z points from the wrist to the tool.
- ``pos`` is the camera's position in the mount frame (m). Its direction is
  ``lookat`` (a point in the mount frame the optical axis passes through)
  or ``quat`` (w, x, y, z: the camera frame in the mount frame, in the
  OpenGL/MuJoCo/USD convention: the camera looks along its -z, +y is up in
  the image, +x to the right). With ``lookat`` the image's up is the
  mount's +z, or its +x when the camera looks along z.
- ``fov_deg`` is the vertical field of view; pixels are square, so
  fy = fx = (height / 2) / tan(fov / 2), principal point at the image centre.
- ``every``: a frame every N control periods (steps k with k % N == 0).
- ``encoding``: ``raw`` (RawImage rgb8 on ``camera/<name>/image``), ``jpeg``
  or ``png`` (CompressedImage on ``camera/<name>/compressed``).
- ``device`` (real cameras only): a V4L2 device or a video file that
  ``hil node camera`` reads at ``rate_hz``.

The compact syntax (``hil node sim --camera``) is ``NAME:key=value,...``
with keys ``mount``, ``pos``, ``lookat``, ``quat`` (vectors written
``0.6/0/0.4``), ``w``, ``h``, ``fov``, ``every``, ``enc``, e.g.
``wrist:mount=link5,w=320,h=240,fov=60,every=5,enc=jpeg``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bus.errors import HilError
from bus.topics import CAMERA_NAME
from roarm.kinematics import fk_frames

ENCODINGS = ("raw", "jpeg", "png")
# Bodies a camera can ride on (MJCF body names; the same names as the URDF's links).
MOUNT_BODIES = ("base_link", "link1", "link2", "link3", "link4", "link5", "gripper_link")
MOUNTS = ("world", *MOUNT_BODIES)
MAX_SIDE = 4096  # px: 4K frames stay under the bus's 32 MiB frame limit
# Where a camera sits when the spec gives no pose: a world camera in front of
# the arm looking at the table in reach; a body camera beside the hand,
# looking along it toward the tool.
DEFAULT_WORLD_POS = (0.55, -0.45, 0.5)
DEFAULT_WORLD_LOOKAT = (0.15, 0.0, 0.1)
DEFAULT_BODY_POS = (0.0, -0.045, 0.05)
DEFAULT_BODY_LOOKAT = (0.0, -0.045, 1.0)
# Compact-syntax keys -> field names.
SHORT_KEYS = {"mount": "mount", "pos": "pos", "lookat": "lookat", "quat": "quat", "w": "width", "width": "width",
              "h": "height", "height": "height", "fov": "fov_deg", "fov_deg": "fov_deg", "every": "every",
              "enc": "encoding", "encoding": "encoding", "device": "device", "rate": "rate_hz",
              "rate_hz": "rate_hz"}
FIELDS = ("name", "mount", "pos", "lookat", "quat", "width", "height", "fov_deg", "every", "encoding", "device",
          "rate_hz")


class CameraSpecError(HilError, ValueError):
    """A camera description that cannot work; ``problems`` are (field, what is wrong) pairs."""

    def __init__(self, problems: list[tuple[str, str]], name: str = "") -> None:
        self.problems = problems
        where = f"camera {name!r}: " if name else "camera: "
        super().__init__(where + "; ".join(f"{f}: {text}" for f, text in problems))


@dataclass(frozen=True)
class CameraSpec:
    """One camera; see the module docstring for every field's meaning."""

    name: str
    mount: str = "world"
    pos: tuple[float, float, float] | None = None
    lookat: tuple[float, float, float] | None = None
    quat: tuple[float, float, float, float] | None = None
    width: int = 320
    height: int = 240
    fov_deg: float = 60.0
    every: int = 1
    encoding: str = "raw"
    device: str | None = None
    rate_hz: float = 30.0

    def __post_init__(self) -> None:
        problems = check(self)
        if problems:
            raise CameraSpecError(problems, self.name if isinstance(self.name, str) else "")

    # -- geometry ---------------------------------------------------------------------
    def mount_pose(self) -> np.ndarray:
        """The camera frame in the mount frame (4x4; OpenGL convention: looks along -z)."""
        body = self.mount != "world"
        pos = np.asarray(self.pos if self.pos is not None else (DEFAULT_BODY_POS if body else DEFAULT_WORLD_POS),
                         dtype=float)
        pose = np.eye(4)
        pose[:3, 3] = pos
        if self.quat is not None:
            pose[:3, :3] = quat_to_matrix(np.asarray(self.quat, dtype=float))
        else:
            default = DEFAULT_BODY_LOOKAT if body else DEFAULT_WORLD_LOOKAT
            target = np.asarray(self.lookat if self.lookat is not None else default, dtype=float)
            if self.pos is not None and self.lookat is None and body:
                target = pos + np.array([0.0, 0.0, 1.0])  # along the body's z, like the default
            pose[:3, :3] = look_rotation(pos, target)
        return pose

    def mount_quat(self) -> np.ndarray:
        """The camera's orientation in the mount frame as (w, x, y, z)."""
        return matrix_to_quat(self.mount_pose()[:3, :3])

    def world_pose(self, q: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
        """The camera frame in the world (4x4, OpenGL convention) with the arm at joints ``q``.

        A body mount follows the arm (roarm.kinematics, the URDF chain: the
        MJCF body frame is the URDF link frame turned to be world-aligned at q = 0).
        """
        if self.mount == "world":
            return self.mount_pose()
        return body_frame(self.mount, np.zeros(6) if q is None else np.asarray(q, dtype=float)) @ self.mount_pose()

    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels of the pinhole camera (square pixels)."""
        f = (self.height / 2.0) / math.tan(math.radians(self.fov_deg) / 2.0)
        return f, f, self.width / 2.0, self.height / 2.0

    @property
    def fov_x_deg(self) -> float:
        """The horizontal field of view that square pixels give."""
        return math.degrees(2.0 * math.atan(math.tan(math.radians(self.fov_deg) / 2.0) * self.width / self.height))

    def due(self, step: int) -> bool:
        """Whether robot step ``step`` gets a frame of this camera."""
        return step % self.every == 0

    # -- forms ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form with the resolved pose (what ``info.extra["cameras"]`` holds)."""
        fx, fy, cx, cy = self.intrinsics()
        out: dict[str, Any] = {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}
        out.update(pos=[float(v) for v in self.mount_pose()[:3, 3]], quat=[float(v) for v in self.mount_quat()],
                   fx=fx, fy=fy, cx=cx, cy=cy)
        out.pop("lookat", None)
        return out

    def to_compact(self) -> str:
        """The compact syntax of this spec (``parse_compact`` gives it back); device and rate left out."""
        parts = [f"mount={self.mount}", f"w={self.width}", f"h={self.height}", f"fov={self.fov_deg!r}",
                 f"every={self.every}", f"enc={self.encoding}"]
        for key in ("pos", "lookat", "quat"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key}=" + "/".join(repr(float(v)) for v in value))
        return f"{self.name}:" + ",".join(parts)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CameraSpec:
        """The spec of ``to_dict`` (or any mapping of the fields); CameraSpecError names bad fields."""
        unknown = sorted(set(data) - set(FIELDS) - {"fx", "fy", "cx", "cy"})
        if unknown:
            raise CameraSpecError([(k, f"unknown field (known: {', '.join(FIELDS)})") for k in unknown],
                                  str(data.get("name", "")))
        values = {k: v for k, v in data.items() if k in FIELDS}
        problems: list[tuple[str, str]] = []
        for key in ("pos", "lookat", "quat"):
            if key in values and values[key] is not None:
                vector = _vector(values[key], 4 if key == "quat" else 3)
                if vector is None:
                    problems.append((key, f"expected {4 if key == 'quat' else 3} numbers, got {values[key]!r}"))
                    values.pop(key)
                else:
                    values[key] = vector
        if problems:
            raise CameraSpecError(problems, str(data.get("name", "")))
        return cls(**values)


def check(spec: CameraSpec) -> list[tuple[str, str]]:
    """Every problem of a spec as (field, what is wrong); [] when it can run."""
    problems: list[tuple[str, str]] = []
    if not isinstance(spec.name, str) or not CAMERA_NAME.fullmatch(spec.name):
        problems.append(("name", f"{spec.name!r}: use 1 to 32 of a-z, 0-9 and _ (it becomes part of topic names)"))
    if spec.mount not in MOUNTS:
        problems.append(("mount", f"{spec.mount!r} is not world or a body of the arm ({', '.join(MOUNT_BODIES)})"))
    for key, size in (("pos", 3), ("lookat", 3), ("quat", 4)):
        value = getattr(spec, key)
        if value is not None and (len(value) != size or not all(_finite(v) for v in value)):
            problems.append((key, f"expected {size} finite numbers, got {value!r}"))
    if spec.quat is not None and spec.lookat is not None:
        problems.append(("quat", "give lookat or quat, not both"))
    if spec.quat is not None and len(spec.quat) == 4 and all(_finite(v) for v in spec.quat):
        if abs(math.sqrt(sum(v * v for v in spec.quat)) - 1.0) > 1e-3:
            problems.append(("quat", "a rotation quaternion (w, x, y, z) has norm 1"))
    if spec.lookat is not None and spec.pos is not None and len(spec.lookat) == 3 and len(spec.pos) == 3:
        if all(_finite(v) for v in (*spec.lookat, *spec.pos)) and \
                math.dist(spec.lookat, spec.pos) < 1e-6:
            problems.append(("lookat", "the camera cannot look at the point it stands on"))
    for key in ("width", "height"):
        value = getattr(spec, key)
        if not _integer(value) or not 1 <= value <= MAX_SIDE:
            problems.append((key, f"expected a whole number of pixels 1..{MAX_SIDE}, got {value!r}"))
    if not _finite(spec.fov_deg) or not 1.0 <= float(spec.fov_deg) <= 170.0:
        problems.append(("fov_deg", f"expected a vertical field of view of 1..170 degrees, got {spec.fov_deg!r}"))
    if not _integer(spec.every) or not 1 <= spec.every <= 100_000:
        problems.append(("every", f"expected a whole number of control periods >= 1, got {spec.every!r}"))
    if spec.encoding not in ENCODINGS:
        problems.append(("encoding", f"{spec.encoding!r} is not one of {', '.join(ENCODINGS)}"))
    if spec.device is not None and (not isinstance(spec.device, str) or not spec.device):
        problems.append(("device", f"expected a device path or video file, got {spec.device!r}"))
    if not _finite(spec.rate_hz) or not 0 < float(spec.rate_hz) <= 1000:
        problems.append(("rate_hz", f"expected frames per second in (0, 1000], got {spec.rate_hz!r}"))
    return problems


def parse_compact(text: str) -> CameraSpec:
    """``NAME:key=value,...`` (module docstring) -> CameraSpec; CameraSpecError says what is wrong."""
    name, colon, rest = text.partition(":")
    name = name.strip()
    values: dict[str, Any] = {"name": name}
    problems: list[tuple[str, str]] = []
    for item in (rest.split(",") if colon and rest.strip() else []):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        target = SHORT_KEYS.get(key)
        if not eq or target is None:
            problems.append((key or item, f"expected key=value with a key of {', '.join(sorted(set(SHORT_KEYS)))}"))
            continue
        if target in ("pos", "lookat", "quat"):
            size = 4 if target == "quat" else 3
            vector = _vector(value.replace("/", " ").split(), size)
            if vector is None:
                problems.append((target, f"expected {size} numbers written a/b/c, got {value!r}"))
                continue
            values[target] = vector
        elif target in ("width", "height", "every"):
            try:
                values[target] = int(value)
            except ValueError:
                problems.append((target, f"expected a whole number, got {value!r}"))
        elif target in ("fov_deg", "rate_hz"):
            try:
                values[target] = float(value)
            except ValueError:
                problems.append((target, f"expected a number, got {value!r}"))
        else:
            values[target] = value
    if problems:
        raise CameraSpecError(problems, name)
    return CameraSpec(**values)


def check_unique(specs: Sequence[CameraSpec]) -> None:
    """Two cameras of one run may not share a name (they would share topics)."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise CameraSpecError([("name", "two cameras of one run have this name")], spec.name)
        seen.add(spec.name)


# -- rotations --------------------------------------------------------------------------
def look_rotation(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Columns x, y, z of a camera at ``pos`` looking at ``target`` (OpenGL: looks along -z)."""
    forward = np.asarray(target, dtype=float) - np.asarray(pos, dtype=float)
    forward /= np.linalg.norm(forward)
    up = np.array([0.0, 0.0, 1.0])
    if np.linalg.norm(np.cross(forward, up)) < 1e-6:
        up = np.array([1.0, 0.0, 0.0])
    x = np.cross(forward, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    return np.column_stack([x, y, -forward])


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    w, x, y, z = np.asarray(quat, dtype=float) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix, w >= 0."""
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = np.array([(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s])
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = np.array([(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s])
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = np.array([(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s])
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


# The URDF link frames at q = 0 (roarm.kinematics): an MJCF body frame is the
# URDF link frame turned by the inverse of that rotation (same origin).
_URDF_FRAMES = ("base_link", "link1", "link2", "link3", "link4", "link5")
_GRIPPER_LINK5 = ("gripper_link",)


def urdf_to_body(mount: str) -> np.ndarray:
    """The MJCF body frame of ``mount`` in its URDF link frame (4x4 rotation):
    T_world_body(q) = T_world_urdf_link(q) @ urdf_to_body(mount)."""
    link = "link5" if mount in _GRIPPER_LINK5 else mount
    rotation = fk_frames(np.zeros(6))[_URDF_FRAMES.index(link)][:3, :3]
    out = np.eye(4)
    out[:3, :3] = rotation.T
    return out


def body_frame(mount: str, q: np.ndarray) -> np.ndarray:
    """World pose (4x4) of an arm body's MJCF frame at joints ``q``.

    ``gripper_link`` is placed as link5 moved to the jaw's hinge (its own
    opening angle is not followed: a camera on the jaw would swing with it).
    """
    link = "link5" if mount in _GRIPPER_LINK5 else mount
    frame = fk_frames(q)[_URDF_FRAMES.index(link)] @ urdf_to_body(mount)
    if mount in _GRIPPER_LINK5:
        offset = np.eye(4)
        offset[:3, 3] = GRIPPER_IN_LINK5
        frame = frame @ offset
    return frame


# The jaw hinge in link5's MJCF frame (sim_node/models/roarm_m3.xml, body gripper_link).
GRIPPER_IN_LINK5 = (0.018821, 0.0, 0.052035)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _vector(value: Any, size: int) -> tuple[float, ...] | None:
    if not isinstance(value, (list, tuple)) or len(value) != size:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if all(math.isfinite(v) for v in out) else None


__all__ = ["CameraSpec", "CameraSpecError", "ENCODINGS", "MOUNTS", "check", "parse_compact", "check_unique",
           "body_frame", "look_rotation", "quat_to_matrix", "matrix_to_quat", "urdf_to_body"]
