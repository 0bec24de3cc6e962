"""MuJoCo's offscreen cameras: the scene seen by each CameraSpec, rendered headless.

Rendering needs an OpenGL that works without a display: Mesa's EGL
(``MUJOCO_GL=egl``; on a machine with an NVIDIA GPU, EGL uses it) or, where
EGL is missing, Mesa's software OSMesa (``MUJOCO_GL=osmesa``).
``MUJOCO_GL`` set by the user wins; otherwise EGL is chosen when ``libEGL``
is installed, OSMesa when only ``libOSMesa`` is, and ``RenderUnavailable``
names the Debian packages when neither is (libegl1 libegl-mesa0
libgl1-mesa-dri, or libosmesa6).

Every camera renders through one GL context and one scene with shadows,
reflections and multisampling off: on a software rasterizer they cost about
20 times the frame. ``render`` reads the pixels straight into the caller's
array (a FrameBuffer's pixels for raw frames: bus/images.py), flipping
OpenGL's bottom-up rows on the way, the one copy a frame takes.

Cameras are ``<camera>`` elements added to the MJCF at load time (in the
world or in the body named by ``mount``): MuJoCo then moves a wrist camera
with its link itself. They change nothing MuJoCo simulates.
"""

from __future__ import annotations

import ctypes.util
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from bus.errors import Failed
from roarm.camera import CameraSpec

GL_PACKAGES = {
    "egl": "Mesa's EGL (Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri)",
    "osmesa": "Mesa's OSMesa (Debian/Ubuntu: apt-get install libosmesa6)",
}


class RenderUnavailable(Failed, RuntimeError):
    """No headless OpenGL here to render cameras with; says which packages to install."""


def choose_gl() -> str:
    """The GL platform to render with: MUJOCO_GL if set, else egl, else osmesa (module docstring)."""
    chosen = os.environ.get("MUJOCO_GL", "").strip().lower()
    if chosen:
        if chosen not in GL_PACKAGES:
            raise RenderUnavailable(f"MUJOCO_GL={chosen!r} cannot render headless: use egl or osmesa "
                                    f"({GL_PACKAGES['egl']}; {GL_PACKAGES['osmesa']})")
        return chosen
    if ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    raise RenderUnavailable("cameras need an OpenGL that renders without a display, and neither libEGL nor "
                            f"libOSMesa is installed: install {GL_PACKAGES['egl']} or {GL_PACKAGES['osmesa']}")


def gl_context(platform: str, width: int, height: int) -> Any:
    """A current GL context of ``platform`` for offscreen buffers up to width x height."""
    os.environ.setdefault("MUJOCO_GL", platform)
    os.environ.setdefault("PYOPENGL_PLATFORM", platform)
    try:
        if platform == "egl":
            from mujoco.egl import GLContext
        else:
            from mujoco.osmesa import GLContext
        context = GLContext(width, height)
        context.make_current()
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        other = "osmesa" if platform == "egl" else "egl"
        raise RenderUnavailable(
            f"cannot render cameras with MUJOCO_GL={platform}: {exc}. It needs {GL_PACKAGES[platform]}; "
            f"or set MUJOCO_GL={other} with {GL_PACKAGES[other]}") from None
    return context


def add_cameras(xml: str, specs: Sequence[CameraSpec]) -> str:
    """The MJCF with a ``<camera>`` for each spec, in the world or in its mount body."""
    if not specs:
        return xml
    root = ET.fromstring(xml)
    worldbody = root.find("worldbody")
    if worldbody is None:
        raise ValueError("the MJCF has no <worldbody>")
    bodies = {body.get("name"): body for body in worldbody.iter("body")}
    for spec in specs:
        parent = worldbody if spec.mount == "world" else bodies.get(spec.mount)
        if parent is None:
            raise ValueError(f"camera {spec.name!r}: the model has no body {spec.mount!r}")
        pose = spec.mount_pose()
        quat = spec.mount_quat()
        ET.SubElement(parent, "camera", {
            "name": spec.name,
            "pos": " ".join(f"{v:.9g}" for v in pose[:3, 3]),
            "quat": " ".join(f"{v:.9g}" for v in quat),
            "fovy": f"{spec.fov_deg:.9g}",  # degrees whatever the compiler's angle unit
        })
    return ET.tostring(root, encoding="unicode")


class MujocoCameras:
    """Offscreen rendering of a loaded model's cameras (those ``add_cameras`` put in)."""

    def __init__(self, specs: Sequence[CameraSpec]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.platform = ""
        self._mujoco: Any = None
        self._context: Any = None
        self._mjr: Any = None
        self._scene: Any = None
        self._option: Any = None
        self._cameras: dict[str, Any] = {}
        self._viewports: dict[str, Any] = {}
        self._scratch: dict[str, np.ndarray] = {}

    def connect(self, model: Any) -> None:
        """Make the GL context, the render context and one scene for every camera of ``model``."""
        if not self.specs:
            return
        import mujoco

        self._mujoco = mujoco
        width = max(spec.width for spec in self.specs.values())
        height = max(spec.height for spec in self.specs.values())
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
        model.vis.quality.offsamples = 0  # no multisampling
        self.platform = choose_gl()
        self._context = gl_context(self.platform, int(model.vis.global_.offwidth), int(model.vis.global_.offheight))
        self._mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._mjr)
        self._scene = mujoco.MjvScene(model, maxgeom=200)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
        self._option = mujoco.MjvOption()
        self._option.sitegroup[:] = 0  # the TCP site is a marker of the model, not a part of the arm
        for name, spec in self.specs.items():
            camera = mujoco.MjvCamera()
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            if camera.fixedcamid < 0:
                raise ValueError(f"camera {name!r} is not in the model (add_cameras puts it there)")
            self._cameras[name] = camera
            self._viewports[name] = mujoco.MjrRect(0, 0, spec.width, spec.height)
            self._scratch[name] = np.empty((spec.height, spec.width, 3), np.uint8)

    def render(self, model: Any, data: Any, name: str, out: np.ndarray) -> None:
        """Camera ``name``'s view of ``data`` as RGB rows top down into ``out`` ((h, w, 3) uint8).

        Positions are brought up to date first (mj_step leaves them one
        physics step behind): this writes only derived quantities that the
        next mj_step recomputes, so rendering changes no simulated state.
        """
        mujoco = self._mujoco
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        mujoco.mjv_updateScene(model, data, self._option, None, self._cameras[name], mujoco.mjtCatBit.mjCAT_ALL,
                               self._scene)
        viewport = self._viewports[name]
        mujoco.mjr_render(viewport, self._scene, self._mjr)
        scratch = self._scratch[name]
        mujoco.mjr_readPixels(scratch, None, viewport, self._mjr)
        cv2.flip(scratch, 0, dst=out)  # OpenGL's rows run bottom up

    def close(self) -> None:
        if self._mjr is not None:
            self._mjr.free()
            self._mjr = None
        if self._context is not None:
            self._context.free()
            self._context = None
