"""The Isaac Sim 5.x backend (standalone API, headless, PhysX).

It runs inside Isaac Sim's own Python: ``./python.sh -m sim_node --backend
isaac --run-dir DIR``. Every Isaac import happens in ``connect`` because
``SimulationApp`` must exist before any other omni/isaacsim module is
imported; elsewhere (CI, this machine) ``connect`` fails with a message that
says what to install and how to start it.

The arm is the URDF from sim_node/urdf.py (the same chain as
roarm.kinematics), imported with the isaacsim.asset.importer.urdf extension
as a fixed-base articulation with position drives. As in the MuJoCo backend,
the drive target moves toward the command by at most the joint speed limit
each physics step and drive forces are capped at the servo's stall torque.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from roarm.joints import MAX_TORQUE, NAMES
from schemas.services_pb2 import Randomization
from sim_node.backend import BackendUnavailable, SimBackend, physics_substeps, servo_ramp
from sim_node.urdf import URDF_JOINTS, roarm_m3_urdf

PHYSICS_DT = 0.002
# Position drive gains per bus joint: the MJCF's servo (kp N*m/rad, kd N*m*s/rad).
KP = np.array([60.0, 60.0, 60.0, 60.0, 60.0, 5.0])
KD = np.array([1.2, 1.2, 1.2, 1.2, 1.2, 0.1])
JOINT_FRICTION = 0.02

INSTALL_HINT = (
    "the isaac backend needs NVIDIA Isaac Sim 5.x and must run in its Python: "
    "from the Isaac Sim folder, install this project's light dependencies into that interpreter "
    "(./python.sh -m pip install pyzmq msgpack click 'protobuf>=5.26,<7' and ./python.sh -m pip install --no-deps "
    "-e /path/to/roarm-hil) and start "
    "the node with ./python.sh -m sim_node --backend isaac --run-dir DIR. "
    "Use --backend mujoco or --backend mock on machines without Isaac Sim."
)


class IsaacBackend(SimBackend):
    name = "isaac"

    def __init__(self, dt: float = 0.01, physics_dt: float = PHYSICS_DT, headless: bool = True) -> None:
        super().__init__(dt)
        self.substeps = physics_substeps(dt, physics_dt)
        self.physics_dt = float(physics_dt)
        self.headless = headless
        self._app: Any = None
        self._world: Any = None
        self._robot: Any = None
        self._action: Any = None
        self._index = np.arange(len(NAMES))
        self._ctrl = np.zeros(len(NAMES))
        self._nominal_masses: np.ndarray | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    def connect(self) -> None:
        try:
            from isaacsim import SimulationApp
        except ImportError as exc:
            raise BackendUnavailable(f"{INSTALL_HINT} ({exc})") from None
        self._app = SimulationApp({"headless": self.headless})
        # Only now may omni.* and isaacsim.* submodules be imported.
        import omni.kit.commands
        from isaacsim.core.api import World
        from isaacsim.core.prims import SingleArticulation
        from isaacsim.core.utils.extensions import enable_extension
        from isaacsim.core.utils.types import ArticulationAction

        enable_extension("isaacsim.asset.importer.urdf")
        from isaacsim.asset.importer.urdf import _urdf

        self._action = ArticulationAction
        self._world = World(physics_dt=self.physics_dt, rendering_dt=self.dt, stage_units_in_meters=1.0)
        urdf = roarm_m3_urdf()
        self.model_hash = hashlib.sha256(urdf.encode()).hexdigest()
        self._workdir = tempfile.TemporaryDirectory(prefix="roarm-isaac-")
        urdf_path = Path(self._workdir.name) / "roarm_m3.urdf"
        urdf_path.write_text(urdf)

        _ok, config = omni.kit.commands.execute("URDFCreateImportConfig")
        config.fix_base = True
        config.merge_fixed_joints = False
        config.import_inertia_tensor = True
        config.self_collision = False
        config.create_physics_scene = False  # the World owns the physics scene
        config.distance_scale = 1.0
        config.default_drive_type = _urdf.UrdfJointTargetType.JOINT_DRIVE_POSITION
        ok, prim_path = omni.kit.commands.execute("URDFParseAndImportFile", urdf_path=str(urdf_path),
                                                  import_config=config, get_articulation_root=True)
        if not ok or not prim_path:
            raise RuntimeError(f"Isaac Sim could not import {urdf_path} (URDFParseAndImportFile returned {ok!r})")
        self._robot = self._world.scene.add(SingleArticulation(prim_path=str(prim_path), name="roarm_m3"))
        self._world.reset()  # initializes the articulation's physics handles
        dof_names = list(self._robot.dof_names)
        missing = [URDF_JOINTS[n] for n in NAMES if URDF_JOINTS[n] not in dof_names]
        if missing:
            raise RuntimeError(f"imported articulation lacks joints {missing}; it has {dof_names}")
        self._index = np.array([self._robot.get_dof_index(URDF_JOINTS[n]) for n in NAMES])
        controller = self._robot.get_articulation_controller()
        controller.set_max_efforts(np.full(len(NAMES), MAX_TORQUE), joint_indices=self._index)
        self._nominal_masses = np.asarray(self._robot._articulation_view.get_body_masses(), dtype=float).copy()

    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None:
        if self._robot is None:
            raise RuntimeError("IsaacBackend.reset before connect()")
        r = randomization
        controller = self._robot.get_articulation_controller()
        controller.set_gains(kps=self._in_dof_order(KP * r.actuator_gain_scale),
                             kds=self._in_dof_order(KD * r.damping_scale))
        # SingleArticulation has no setters for these: its Articulation view does (Isaac's documented way in).
        view = self._robot._articulation_view
        view.set_body_masses(self._nominal_masses * r.mass_scale)
        view.set_friction_coefficients(np.full((1, len(NAMES)), JOINT_FRICTION * r.friction_scale),
                                       joint_indices=self._index)
        self._robot.set_joint_positions(position, joint_indices=self._index)
        self._robot.set_joint_velocities(np.zeros(len(NAMES)), joint_indices=self._index)
        self._ctrl = position.copy()
        self._robot.apply_action(self._action(joint_positions=self._ctrl, joint_indices=self._index))

    def _in_dof_order(self, values: np.ndarray) -> np.ndarray:
        """Bus-order values rearranged into the articulation's DOF order."""
        out = np.empty(len(NAMES))
        out[self._index] = values
        return out

    def _advance(self, target: np.ndarray) -> None:
        for ctrl in servo_ramp(self._ctrl, target, self.physics_dt, self.substeps):
            self._robot.apply_action(self._action(joint_positions=ctrl, joint_indices=self._index))
            self._world.step(render=False)
            self._ctrl = ctrl

    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        robot = self._robot
        return (np.asarray(robot.get_joint_positions(), dtype=float)[self._index],
                np.asarray(robot.get_joint_velocities(), dtype=float)[self._index],
                np.asarray(robot.get_measured_joint_efforts(), dtype=float)[self._index])

    @property
    def physics_info(self) -> dict[str, str]:
        return {"physics_dt": f"{self.physics_dt}", "substeps": str(self.substeps), "engine": "isaac-sim physx"}

    def close(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            self._robot = None
            self._world = None
            app.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
