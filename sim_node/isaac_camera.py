"""Isaac Sim 5.x cameras (``isaacsim.sensors.camera.Camera``) for the CameraSpecs of a run.

The isaac backend (sim_node/isaac_backend.py) hands this module Isaac's
``Camera`` class once ``SimulationApp`` runs; everything else here is plain
geometry, so the same numbers reach Isaac Sim as reach MuJoCo
(sim_node/camera.py) from one CameraSpec (roarm/camera.py).

Where each camera lives on the stage:

- a ``world`` camera is the prim ``/roarm_cameras/camera_<name>``, placed
  with ``set_world_pose``;
- a camera on a body is a child prim of that link's prim,
  ``<robot>/<link>/camera_<name>``, placed with ``set_local_pose``: USD then
  carries it with the link, as it does the cameras the URDF importer itself
  puts under link prims. ``<robot>`` is the parent of the articulation root
  the importer returns (``<robot>/root_joint`` for a fixed base). The prefix
  keeps a camera named like the importer's own children (``visuals``,
  ``collisions``) from landing on them.

A link prim's frame is the URDF link frame (the importer places each link
at its URDF pose), not the MJCF body frame a CameraSpec's mount is written
in (at q = 0 aligned with the world). The local pose is therefore
``inv(T_world_link(0)) @ spec.world_pose(0)``: at any q the camera is where
``spec.world_pose(q)`` puts it (for ``gripper_link``, whose jaw angle
world_pose ignores, at a closed jaw).

Poses are given with ``camera_axes="usd"``: a CameraSpec's frame is
OpenGL's, which is USD's (looks along -z, +y up). The API's default,
``"world"``, means +x forward and +z up and would turn the camera.

The lens is a pinhole with square pixels: the horizontal aperture keeps
USD's default width (20.955 mm, 2.0955 stage units), the focal length gives
the horizontal field of view ``fov_x_deg``, and the vertical aperture is
``horizontal * height / width``, so ``fy = height * focal / vertical =
(height / 2) / tan(fov_deg / 2)``, CameraSpec.intrinsics(). The near clip
goes from USD's default of one stage unit (1 m: a wrist camera would see
nothing) to 5 mm.

Frames: ``get_rgba()`` is empty until the camera's render product has been
rendered once after ``initialize()`` (and None, with a warning, before
``initialize()``), then (height, width, 4) uint8 rows top down. The backend
renders (``world.render()``: the app updates, physics does not step) once
per state before copying the RGB of each camera due.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bus.errors import Failed
from roarm.camera import CameraSpec, matrix_to_quat
from roarm.kinematics import LINK5_TO_GRIPPER, fk_frames

WORLD_CAMERAS = "/roarm_cameras"
USD_HORIZONTAL_APERTURE = 2.0955  # stage units: USD's default 20.955 (tenths of a unit)
CLIPPING_RANGE = (0.005, 100.0)  # m
# Renders allowed for every camera's first frame to arrive after initialize().
WARMUP_RENDERS = 10
_LINK_FRAMES = ("base_link", "link1", "link2", "link3", "link4", "link5")


class IsaacCameraError(Failed, RuntimeError):
    """Isaac Sim gave no frame, or one of another size than the camera's."""


@dataclass(frozen=True)
class Lens:
    """The USD camera attributes of one spec, in stage units (m)."""

    focal_length: float
    horizontal_aperture: float
    vertical_aperture: float


def lens(spec: CameraSpec) -> Lens:
    """Focal length and apertures giving the spec's field of view with square pixels."""
    horizontal = USD_HORIZONTAL_APERTURE
    focal = (horizontal / 2.0) / math.tan(math.radians(spec.fov_x_deg) / 2.0)
    return Lens(focal, horizontal, horizontal * spec.height / spec.width)


def link_frame_at_zero(link: str) -> np.ndarray:
    """World pose (4x4) of the URDF link ``link`` with every joint at zero."""
    frames = fk_frames(np.zeros(6))
    if link == "gripper_link":
        return frames[_LINK_FRAMES.index("link5")] @ _urdf_origin(*LINK5_TO_GRIPPER)
    return frames[_LINK_FRAMES.index(link)]


def prim_path(spec: CameraSpec, robot_prim: str) -> str:
    """Where the camera's prim goes (module docstring)."""
    if spec.mount == "world":
        return f"{WORLD_CAMERAS}/camera_{spec.name}"
    return f"{robot_prim}/{spec.mount}/camera_{spec.name}"


def mount_pose(spec: CameraSpec) -> tuple[np.ndarray, np.ndarray]:
    """(translation, quaternion w, x, y, z) of the camera in its parent prim, USD camera axes.

    For ``world`` the parent is the stage (the pose is the world pose).
    """
    pose = spec.world_pose(np.zeros(6))
    if spec.mount != "world":
        pose = np.linalg.inv(link_frame_at_zero(spec.mount)) @ pose
    return pose[:3, 3].copy(), matrix_to_quat(pose[:3, :3])


def _urdf_origin(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """A URDF ``<origin>``: translate, then Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rz @ ry @ rx
    out[:3, 3] = xyz
    return out


class IsaacCameras:
    """The Isaac ``Camera`` of each spec: made before ``world.reset()``, initialized after it."""

    def __init__(self, specs: Sequence[CameraSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._cameras: dict[str, Any] = {}
        self._initialized = False

    def create(self, camera_class: Callable[..., Any], robot_prim: str) -> None:
        """Define each camera prim with its resolution, pose and lens (the stage exists, the timeline need not play)."""
        for name, spec in self.specs.items():
            camera = camera_class(prim_path=prim_path(spec, robot_prim), name=f"camera_{name}",
                                  resolution=(spec.width, spec.height))
            translation, orientation = mount_pose(spec)
            if spec.mount == "world":
                camera.set_world_pose(position=translation, orientation=orientation, camera_axes="usd")
            else:
                camera.set_local_pose(translation=translation, orientation=orientation, camera_axes="usd")
            glass = lens(spec)
            camera.set_focal_length(glass.focal_length)
            camera.set_horizontal_aperture(glass.horizontal_aperture)  # and the vertical, for square pixels
            camera.set_vertical_aperture(glass.vertical_aperture)
            camera.set_clipping_range(*CLIPPING_RANGE)
            got = camera.get_vertical_aperture()
            if not math.isclose(got, glass.vertical_aperture, rel_tol=1e-4):
                raise IsaacCameraError(f"camera {name!r}: Isaac Sim kept a vertical aperture of {got}, not "
                                       f"{glass.vertical_aperture}: the field of view would differ from fov_deg")
            self._cameras[name] = camera

    def initialize(self, render: Callable[[], None]) -> None:
        """``Camera.initialize()`` (after ``world.reset()``), then render until every camera has its first frame."""
        for camera in self._cameras.values():
            camera.initialize()
        self._initialized = True
        for _ in range(WARMUP_RENDERS):
            render()
            if all(_has_frame(camera.get_rgba()) for camera in self._cameras.values()):
                return
        waiting = [name for name, camera in self._cameras.items() if not _has_frame(camera.get_rgba())]
        raise IsaacCameraError(f"Isaac Sim rendered no frame of camera(s) {', '.join(waiting)} in "
                               f"{WARMUP_RENDERS} renders after initialize()")

    def copy_rgb(self, name: str, out: np.ndarray) -> None:
        """The last rendered frame of camera ``name``, RGB without alpha, into ``out`` ((h, w, 3) uint8)."""
        if not self._initialized:
            raise IsaacCameraError("IsaacBackend.render before connect()")
        spec = self.specs.get(name)
        if spec is None:
            raise KeyError(f"no camera {name!r} (known: {', '.join(self.specs) or 'none'})")
        rgba = self._cameras[name].get_rgba()
        if not _has_frame(rgba):
            raise IsaacCameraError(f"camera {name!r}: Isaac Sim has no frame (get_rgba gave "
                                   f"{None if rgba is None else np.shape(rgba)})")
        rgba = np.asarray(rgba)
        if rgba.shape != (spec.height, spec.width, 4) or rgba.dtype != np.uint8:
            raise IsaacCameraError(f"camera {name!r}: get_rgba gave {rgba.dtype} {rgba.shape}, expected uint8 "
                                   f"{(spec.height, spec.width, 4)}")
        np.copyto(out, rgba[:, :, :3])

    def close(self) -> None:
        for camera in self._cameras.values():
            camera.destroy()
        self._cameras = {}
        self._initialized = False


def _has_frame(rgba: Any) -> bool:
    return rgba is not None and np.size(rgba) > 0


__all__ = ["IsaacCameras", "IsaacCameraError", "Lens", "lens", "link_frame_at_zero", "mount_pose", "prim_path"]
