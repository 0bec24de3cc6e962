"""The MuJoCo backend (the default sim): sim_node/models/roarm_m3.xml at 2 ms.

MuJoCo is imported when the backend is built, not when this package is, so
``hil --help`` and the Isaac Sim interpreter never pay for it. Cameras are
rendered offscreen (sim_node/camera.py); scene objects are the MJCF's mocap
bodies of the same names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roarm.camera import CameraSpec
from roarm.joints import NAMES
from schemas.services_pb2 import Randomization
from sim_node.backend import HIDDEN_POSITION, SimBackend, physics_substeps, servo_ramp
from sim_node.camera import MujocoCameras, add_cameras

MODEL_PATH = Path(__file__).with_name("models") / "roarm_m3.xml"
PHYSICS_DT = 0.002


class MujocoBackend(SimBackend):
    """Position servos with stall-torque limits; the backend adds the speed limit.

    Each physics step the actuator target moves toward the commanded target
    by at most ``MAX_VELOCITY * physics_dt`` (backend.servo_ramp): a servo
    that cannot turn faster than 4.7 rad/s, however far the command jumps. Randomization scales the
    nominal model values kept at connect: body masses and inertias, joint
    damping, joint dry friction, actuator gain (kp).
    """

    name = "mujoco"
    renders = True

    def __init__(self, dt: float = 0.01, model_path: str | Path = MODEL_PATH, physics_dt: float = PHYSICS_DT,
                 cameras: Sequence[CameraSpec] = ()) -> None:
        super().__init__(dt, cameras)
        self.substeps = physics_substeps(dt, physics_dt)
        self.physics_dt = float(physics_dt)
        self.model_path = Path(model_path)
        self.model: Any = None
        self.data: Any = None
        self._ctrl = np.zeros(6)
        self._renderer = MujocoCameras(self.cameras)
        self._mocap: dict[str, int] = {}

    def connect(self) -> None:
        import mujoco

        self._mujoco = mujoco
        xml = self.model_path.read_text()
        # The model file's hash: cameras added at load time change nothing simulated.
        self.model_hash = hashlib.sha256(xml.encode()).hexdigest()
        self.model = mujoco.MjModel.from_xml_string(add_cameras(xml, self.cameras))
        self.model.opt.timestep = self.physics_dt
        self.data = mujoco.MjData(self.model)
        m = self.model
        joint_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name) for name in NAMES]
        actuator_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, name) for name in NAMES]
        if min(joint_ids) < 0 or min(actuator_ids) < 0:
            raise ValueError(f"{self.model_path} must name its joints and actuators {list(NAMES)}")
        self._qpos = _index([int(m.jnt_qposadr[j]) for j in joint_ids])
        self._qvel = _index([int(m.jnt_dofadr[j]) for j in joint_ids])
        self._act = _index(actuator_ids)
        self._tcp_site = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "tcp")
        for name in self.scene_objects:
            body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
            if body < 0 or m.body_mocapid[body] < 0:
                raise ValueError(f"{self.model_path} must have a mocap body {name!r} (a scene object)")
            self._mocap[name] = int(m.body_mocapid[body])
        self._renderer.connect(m)  # cameras: the GL context now, so a node that cannot render never starts
        self._nominal = {
            "body_mass": m.body_mass.copy(),
            "body_inertia": m.body_inertia.copy(),
            "dof_damping": m.dof_damping.copy(),
            "dof_frictionloss": m.dof_frictionloss.copy(),
            "gain": m.actuator_gainprm[:, 0].copy(),
            "bias": m.actuator_biasprm[:, 1].copy(),
        }

    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None:
        if self.model is None:
            raise RuntimeError("MujocoBackend.reset before connect()")
        m, d, nom, r = self.model, self.data, self._nominal, randomization
        m.body_mass[:] = nom["body_mass"] * r.mass_scale
        m.body_inertia[:] = nom["body_inertia"] * r.mass_scale
        m.dof_damping[:] = nom["dof_damping"] * r.damping_scale
        m.dof_frictionloss[:] = nom["dof_frictionloss"] * r.friction_scale
        m.actuator_gainprm[:, 0] = nom["gain"] * r.actuator_gain_scale
        m.actuator_biasprm[:, 1] = nom["bias"] * r.actuator_gain_scale
        self._mujoco.mj_resetData(m, d)
        d.qpos[self._qpos] = position
        d.qvel[:] = 0.0
        self._ctrl = position.copy()
        d.ctrl[self._act] = self._ctrl
        self._apply_scene()  # mj_resetData put the mocap bodies back where the MJCF has them
        self._mujoco.mj_forward(m, d)

    def _advance(self, target: np.ndarray) -> None:
        ramp = servo_ramp(self._ctrl, target, self.physics_dt, self.substeps)
        mj_step, m, d, act = self._mujoco.mj_step, self.model, self.data, self._act
        for ctrl in ramp:
            d.ctrl[act] = ctrl
            mj_step(m, d)
        self._ctrl = ramp[-1].copy()

    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.data
        return d.qpos[self._qpos].copy(), d.qvel[self._qvel].copy(), d.actuator_force[self._act].copy()

    def _measure_floats(self) -> tuple[list[float], list[float], list[float]]:
        d = self.data
        return d.qpos[self._qpos].tolist(), d.qvel[self._qvel].tolist(), d.actuator_force[self._act].tolist()

    def tcp_site(self) -> np.ndarray:
        """The model's own TCP (site ``tcp``), world frame; for checking the MJCF."""
        self._mujoco.mj_kinematics(self.model, self.data)
        return self.data.site_xpos[self._tcp_site].copy()

    def set_joint_positions(self, position: np.ndarray) -> None:
        """Place the joints directly (no dynamics), e.g. to compare kinematics."""
        self.data.qpos[self._qpos] = position
        self._mujoco.mj_kinematics(self.model, self.data)

    def render(self, camera: str, out: np.ndarray) -> None:
        self._renderer.render(self.model, self.data, camera, out)

    def _apply_scene(self) -> None:
        if self.data is None:
            return
        for name, placement in self.scene.items():
            index = self._mocap[name]
            self.data.mocap_pos[index] = HIDDEN_POSITION if placement.hidden else placement.position
            self.data.mocap_quat[index] = placement.quat

    @property
    def physics_info(self) -> dict[str, str]:
        info = {"physics_dt": f"{self.physics_dt}", "substeps": str(self.substeps), "model": self.model_path.name}
        if self._renderer.platform:
            info["render_gl"] = self._renderer.platform
        return info

    def close(self) -> None:
        self._renderer.close()
        self.model = None
        self.data = None


def _index(ids: list[int]) -> slice | np.ndarray:
    """The arm's entries of a MuJoCo array: a slice when they are consecutive, as in the shipped model.

    A slice reads and writes six values without numpy's fancy indexing (a
    third of the time per step, paid several times a step); another model's
    order still works through the index array.
    """
    if ids == list(range(ids[0], ids[0] + len(ids))):
        return slice(ids[0], ids[0] + len(ids))
    return np.array(ids)
