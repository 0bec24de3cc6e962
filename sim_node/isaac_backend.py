"""The Isaac Sim 5.x backend (standalone API, headless, PhysX).

It runs inside Isaac Sim's own Python: ``./python.sh -m sim_node --backend
isaac --run-dir DIR``. Every Isaac import happens in ``connect`` because
``SimulationApp`` must exist before any other omni/isaacsim module is
imported; elsewhere (CI, this machine) ``connect`` fails with a message that
says what to install and how to start it. Isaac Sim 5.0 and 5.1 are
supported; any other version (6.x replaced the URDF importer) is refused
with a message naming those two.

The arm is the URDF from sim_node/urdf.py (the same chain as
roarm.kinematics), imported as a fixed-base articulation whose six joints
get *force* drives: the importer's default is an acceleration drive, whose
gains are accelerations per radian and would make a different arm from
MuJoCo's. The servo is the MJCF's (sim_node/models/roarm_m3.xml), mapped
one to one:

    MJCF                            PhysX (Isaac Sim 5.x)
    position actuator kp, kv        force drive stiffness, damping (per radian)
    actuator forcerange 2.9 N*m     drive max force
    joint damping (passive)         viscous friction coefficient (N*m*s/rad)
    joint frictionloss (N*m)        static and dynamic friction effort (N*m)
    joint armature                  armature

PhysX's older joint friction *coefficient* is unitless (it scales the joint's
constraint force), so it is left at zero. As in the MuJoCo backend,
randomization scales kp (not kv), the joint damping, the dry friction and the
body masses with their inertias; the drive target moves toward the command by
at most the joint speed limit each physics step (backend.servo_ramp).

Gains set at run time are per radian and live in PhysX only: a stop (and so
``world.reset()``) reloads the USD values. The gains are therefore written
twice: into USD at import (per degree, as the importer stores them) and into
PhysX after ``world.reset()`` and on every reset of this backend, with the
armatures, frictions, max efforts, masses and inertias.

Cameras (``cameras=``, sim_node/isaac_camera.py) are ``isaacsim.sensors.camera``
cameras made before the first ``world.reset()`` and initialized after it;
``render`` calls ``world.render()`` once per new state (physics steps run with
``render=False``) and copies each camera's ``get_rgba()`` without alpha.

Written against NVIDIA's source and not run here (no GPU). Checked at
github.com/isaac-sim/IsaacSim tags v5.0.0 and v5.1.0 (``ext`` is
source/extensions):

- ``SimulationApp({"headless": ...})``, ``close()``:
  ext/isaacsim.simulation_app/isaacsim/simulation_app/simulation_app.py
- ``get_version()`` (core, pre-release, major, minor, ...) from the VERSION
  file: ext/isaacsim.core.version/isaacsim/core/version/extension.py
- ``World(physics_dt, rendering_dt, stage_units_in_meters)``, ``reset()`` =
  stop + play then ``scene.post_reset()``, ``step(render)``:
  ext/isaacsim.core.api/python/impl/world/world.py and
  simulation_context/simulation_context.py
- ``URDFCreateImportConfig``, ``URDFParseFile(urdf_path, import_config)``,
  ``URDFImportRobot(urdf_path, urdf_robot, import_config, dest_path,
  get_articulation_root)``: ext/isaacsim.asset.importer.urdf/python/impl/commands.py
- ``ImportConfig`` fields, the enums (``UrdfJointDriveType`` ACCELERATION = 0,
  FORCE = 2), ``UrdfJointDrive.set_drive_type/set_strength/set_damping``:
  ext/isaacsim.asset.importer.urdf/bindings/isaacsim.asset.importer.urdf/
  IsaacsimAssetImporterUrdfBindings.cpp; defaults (driveType ACCELERATION,
  natural frequency 25): include/isaacsim/asset/importer/urdf/UrdfTypes.h,
  IUrdf.h; the parse-time strength (25**2, or times the joint inertia for a
  force drive): plugins/isaacsim.asset.importer.urdf/PluginInterface.cpp
  parseUrdf and UrdfParser.cpp computeSimpleStiffness
- what reaches USD: plugins/isaacsim.asset.importer.urdf/UrdfImporter.cpp
  configureDriveAPI (drive type, stiffness and damping as given, max force
  from the URDF effort limit), AddSingleJoint (limits and max joint velocity
  in degrees, friction coefficient from ``<dynamics friction>``),
  addRigidBody (mass authored only from ``<inertial>``)
- ``SingleArticulation`` (``dof_names``, ``get_dof_index``,
  ``set_joint_positions/velocities``, ``apply_action``,
  ``get_measured_joint_efforts``) and its view ``Articulation``
  (``dof_names`` is None before initialization; ``set_gains`` per radian
  into PhysX while playing, per degree into USD otherwise; ``set_armatures``;
  ``get/set_body_masses``; ``get/set_body_inertias``):
  ext/isaacsim.core.prims/python/impl/single_articulation.py and
  articulation.py; ``ArticulationController.set_gains/set_max_efforts``:
  ext/isaacsim.core.api/python/impl/controllers/articulation_controller.py;
  ``ArticulationAction``: ext/isaacsim.core.utils/python/impl/types.py
- ``Articulation.set_dof_friction_properties(static_frictions,
  dynamic_frictions, viscous_frictions, dof_indices=)`` in effort units and
  per radian, tensor backend while playing (else it writes USD):
  ext/isaacsim.core.experimental.prims/python/impl/articulation.py
- Isaac Lab 2.x forces drives the same way:
  source/isaaclab/isaaclab/sim/converters/urdf_converter.py in
  github.com/isaac-sim/IsaacLab (``URDFParseFile``, then
  ``joint.drive.set_drive_type(JOINT_DRIVE_FORCE)`` and the gains times
  pi/180 on each parsed joint, then ``URDFImportRobot``).
- Cameras (sim_node/isaac_camera.py): ``Camera(prim_path, name, frequency,
  dt, resolution=(width, height), position, orientation, translation, ...)``
  (a new prim gets orientation (1, 0, 0, 0) in the *world* camera axes;
  apertures are made square-pixel at construction), ``initialize()`` "after
  a reset of the world" (makes the render product, attaches the rgb
  annotator), ``set_local_pose`` / ``set_world_pose(..., camera_axes=)``
  with the W_U / R_U conversions, ``set_focal_length`` and
  ``set_horizontal_aperture`` / ``set_vertical_aperture`` in stage units
  (USD stores tenths; ``maintain_square_pixels``), ``set_clipping_range``,
  ``get_rgba()`` (the rgb annotator's data, None with a warning when none is
  attached), ``destroy()``:
  ext/isaacsim.sensors.camera/isaacsim/sensors/camera/camera.py (the same
  at both tags but for the OpenCV lens setters); (height, width, 4) uint8
  from ``get_rgba``: source/standalone_examples/api/isaacsim.sensors.camera/
  camera_annotator_device.py; ``world.reset()`` then ``camera.initialize()``
  then ``world.step(render=True)`` and ``get_rgba()[:, :, :3]``:
  source/standalone_examples/api/isaacsim.sensors.camera/camera.py; fx =
  width * focal / horizontal aperture, fy = height * focal / vertical
  aperture: isaacsim/sensors/camera/tests/test_camera_sensor.py;
  ``SimulationContext.render()`` updates the app with
  ``/app/player/playSimulations`` off (no physics step):
  ext/isaacsim.core.api/python/impl/simulation_context/simulation_context.py;
  link prims at ``<robot>/<link>`` and the URDF's own cameras defined as
  their children (``linkPrim.GetPath().AppendChild``), the articulation root
  ``<robot>/root_joint`` for a fixed base:
  plugins/isaacsim.asset.importer.urdf/UrdfImporter.cpp (addRigidBody,
  addToStage); ``omni.replicator.asyncRendering = false`` in
  source/apps/isaacsim.exp.base.kit.
- Isaac Sim 6.x (tag v6.0.1): ext/isaacsim.asset.importer.urdf exports
  ``URDFImporter`` / ``URDFImporterConfig`` (python/impl/converter.py,
  config.py) and no ``_urdf`` binding or URDF commands, and
  isaacsim.core.api / isaacsim.core.prims moved to source/deprecated.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roarm.camera import CameraSpec
from roarm.joints import MAX_TORQUE, NAMES
from schemas.services_pb2 import Randomization
from sim_node.backend import BackendUnavailable, SimBackend, physics_substeps, servo_ramp
from sim_node.isaac_camera import IsaacCameras
from sim_node.urdf import URDF_JOINTS, roarm_m3_urdf

PHYSICS_DT = 0.002
# The MJCF's servo and joints (sim_node/models/roarm_m3.xml), bus order;
# tests/test_sim_isaac.py checks them against the model MuJoCo loads.
KP = np.array([60.0, 60.0, 60.0, 60.0, 60.0, 5.0])  # position actuator kp, N*m/rad
KV = np.array([1.2, 1.2, 1.2, 1.2, 1.2, 0.1])  # position actuator kv, N*m*s/rad
JOINT_DAMPING = np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.02])  # N*m*s/rad
ARMATURE = np.array([0.01, 0.01, 0.01, 0.01, 0.01, 0.002])  # kg*m^2
FRICTIONLOSS = np.full(6, 0.02)  # N*m
PER_DEGREE = math.pi / 180.0  # USD stores angular drive gains per degree
SUPPORTED_VERSIONS = ("5.0", "5.1")

INSTALL_HINT = (
    "the isaac backend needs NVIDIA Isaac Sim 5.0 or 5.1 and must run in its Python: "
    "from the Isaac Sim folder, install this project's light dependencies into that interpreter "
    "(./python.sh -m pip install pyzmq msgpack click 'protobuf>=5.26,<7' and ./python.sh -m pip install --no-deps "
    "-e /path/to/roarm-hil) and start "
    "the node with ./python.sh -m sim_node --backend isaac --run-dir DIR. "
    "Use --backend mujoco or --backend mock on machines without Isaac Sim."
)


def unsupported(version: str) -> str:
    """Why this Isaac Sim is refused, and which ones work."""
    return (f"Isaac Sim {version or '(version unknown)'} is not supported: the isaac backend is written for "
            f"Isaac Sim {' and '.join(SUPPORTED_VERSIONS)} (their URDF importer's URDFParseFile / URDFImportRobot "
            "commands and isaacsim.core.api). Isaac Sim 6.x replaced that importer with URDFImporter / "
            "URDFImporterConfig and deprecated isaacsim.core.api; this backend has not been ported to it. "
            "Install Isaac Sim 5.1 or 5.0, or use --backend mujoco.")


class IsaacBackend(SimBackend):
    name = "isaac"

    # Cameras: isaacsim.sensors.camera (sim_node/isaac_camera.py). Scene
    # objects are not written yet: the scene is empty.
    renders = True
    scene_objects: tuple[str, ...] = ()

    def __init__(self, dt: float = 0.01, physics_dt: float = PHYSICS_DT, headless: bool = True,
                 cameras: Sequence[CameraSpec] = ()) -> None:
        super().__init__(dt, cameras)
        self.substeps = physics_substeps(dt, physics_dt)
        self.physics_dt = float(physics_dt)
        self.headless = headless
        self.isaac_version = ""
        self._app: Any = None
        self._world: Any = None
        self._robot: Any = None
        self._frictions: Any = None
        self._action: Any = None
        self._index = np.arange(len(NAMES))
        self._ctrl = np.zeros(len(NAMES))
        self._nominal_masses: np.ndarray | None = None
        self._nominal_inertias: np.ndarray | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._cameras = IsaacCameras(self.cameras)
        self._rendered = False  # whether the last render shows the current state

    def connect(self) -> None:
        try:
            from isaacsim import SimulationApp
        except ImportError as exc:
            raise BackendUnavailable(f"{INSTALL_HINT} ({exc})") from None
        self._app = SimulationApp({"headless": self.headless})
        try:
            self._check_version()
            self._build()
        except BaseException:
            self.close()  # the app must not outlive a failed connect
            raise

    def _check_version(self) -> None:
        """Refuse anything but 5.0 / 5.1 before importing APIs that moved in 6.x."""
        try:
            from isaacsim.core.version import get_version
        except ImportError:
            return  # decided by the importer's API in _build
        core, _prerelease, major, minor, *_rest = get_version()
        self.isaac_version = core
        if major and f"{major}.{minor}" not in SUPPORTED_VERSIONS:
            raise BackendUnavailable(unsupported(core))

    def _build(self) -> None:
        # Only now may omni.* and isaacsim.* submodules be imported.
        import omni.kit.commands
        from isaacsim.core.api import World
        from isaacsim.core.experimental.prims import Articulation
        from isaacsim.core.prims import SingleArticulation
        from isaacsim.core.utils.extensions import enable_extension
        from isaacsim.core.utils.types import ArticulationAction

        enable_extension("isaacsim.asset.importer.urdf")
        try:
            from isaacsim.asset.importer.urdf import _urdf
        except ImportError:  # 6.x: URDFImporter instead of the _urdf binding
            raise BackendUnavailable(unsupported(self.isaac_version)) from None

        self._action = ArticulationAction
        self._world = World(physics_dt=self.physics_dt, rendering_dt=self.dt, stage_units_in_meters=1.0)
        urdf = roarm_m3_urdf()
        self.model_hash = hashlib.sha256(urdf.encode()).hexdigest()
        self._workdir = tempfile.TemporaryDirectory(prefix="roarm-isaac-")
        urdf_path = Path(self._workdir.name) / "roarm_m3.urdf"
        urdf_path.write_text(urdf)

        execute = omni.kit.commands.execute
        _ok, config = execute("URDFCreateImportConfig")
        config.fix_base = True
        config.merge_fixed_joints = False  # hand_tcp stays a frame of its own
        config.import_inertia_tensor = True
        config.self_collision = False
        config.create_physics_scene = False  # the World owns the physics scene
        config.distance_scale = 1.0
        config.default_drive_type = _urdf.UrdfJointTargetType.JOINT_DRIVE_POSITION
        ok, robot = execute("URDFParseFile", urdf_path=str(urdf_path), import_config=config)
        if not ok or robot is None:
            raise RuntimeError(f"Isaac Sim could not parse {urdf_path} (URDFParseFile returned {ok!r})")
        # The ImportConfig has no drive type: set it on each parsed joint (robot.joints
        # hands out the parsed joints themselves), with the servo's gains in USD's per-degree units.
        joints = robot.joints
        for i, name in enumerate(NAMES):
            if URDF_JOINTS[name] not in joints:
                raise RuntimeError(f"parsed URDF lacks joint {URDF_JOINTS[name]}; it has {list(joints)}")
            drive = joints[URDF_JOINTS[name]].drive
            drive.set_drive_type(_urdf.UrdfJointDriveType.JOINT_DRIVE_FORCE)
            drive.set_strength(float(KP[i]) * PER_DEGREE)
            drive.set_damping(float(KV[i]) * PER_DEGREE)
        ok, prim_path = execute("URDFImportRobot", urdf_path=str(urdf_path), urdf_robot=robot,
                                import_config=config, get_articulation_root=True)
        if not ok or not prim_path:
            raise RuntimeError(f"Isaac Sim could not import {urdf_path} (URDFImportRobot returned {ok!r})")

        self._robot = self._world.scene.add(SingleArticulation(prim_path=str(prim_path), name="roarm_m3"))
        if self.cameras:
            # The camera prims go on the stage before the play; their render products after it.
            enable_extension("isaacsim.sensors.camera")
            from isaacsim.sensors.camera import Camera

            self._cameras.create(Camera, robot_prim=str(prim_path).rsplit("/", 1)[0])
        self._world.reset()  # a play: initializes the articulation (its DOF names exist only from now)
        dof_names = list(self._robot.dof_names or [])
        missing = [URDF_JOINTS[n] for n in NAMES if URDF_JOINTS[n] not in dof_names]
        if missing:
            raise RuntimeError(f"imported articulation lacks joints {missing}; it has {dof_names}")
        self._index = np.array([self._robot.get_dof_index(URDF_JOINTS[n]) for n in NAMES])
        # The effort-unit joint friction is only in the experimental API (5.0, 5.1).
        self._frictions = Articulation(str(prim_path))
        if not self._frictions.is_physics_tensor_entity_valid():
            raise RuntimeError(f"no PhysX view of {prim_path} after world.reset(): joint friction cannot be set")
        if list(self._frictions.dof_names) != dof_names:
            raise RuntimeError(f"the two articulation APIs disagree on the DOF order: "
                               f"{list(self._frictions.dof_names)} vs {dof_names}")
        view = self._robot._articulation_view  # SingleArticulation has no mass setters; its view does
        self._nominal_masses = np.asarray(view.get_body_masses(), dtype=float).copy()
        self._nominal_inertias = np.asarray(view.get_body_inertias(), dtype=float).copy()
        if self.cameras:
            self._cameras.initialize(self._world.render)

    def _reset_physics(self, position: np.ndarray, randomization: Randomization) -> None:
        if self._robot is None or self._nominal_masses is None or self._nominal_inertias is None:
            raise RuntimeError("IsaacBackend.reset before connect()")
        if not self._frictions.is_physics_tensor_entity_valid():
            raise RuntimeError("Isaac Sim's simulation was stopped under the isaac backend; restart the sim node")
        r = randomization
        # Run-time values are lost on every stop: all of them, every reset.
        controller = self._robot.get_articulation_controller()
        controller.set_gains(kps=self._in_dof_order(KP * r.actuator_gain_scale), kds=self._in_dof_order(KV))
        controller.set_max_efforts(np.full(len(NAMES), MAX_TORQUE), joint_indices=self._index)
        view = self._robot._articulation_view
        view.set_armatures(ARMATURE[None, :], joint_indices=self._index)
        view.set_body_masses(self._nominal_masses * r.mass_scale)
        view.set_body_inertias(self._nominal_inertias * r.mass_scale)
        friction = (FRICTIONLOSS * r.friction_scale)[None, :]
        self._frictions.set_dof_friction_properties(static_frictions=friction, dynamic_frictions=friction,
                                                    viscous_frictions=(JOINT_DAMPING * r.damping_scale)[None, :],
                                                    dof_indices=self._index)
        self._robot.set_joint_positions(position, joint_indices=self._index)
        self._robot.set_joint_velocities(np.zeros(len(NAMES)), joint_indices=self._index)
        self._ctrl = position.copy()
        self._robot.apply_action(self._action(joint_positions=self._ctrl, joint_indices=self._index))
        self._rendered = False

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
        self._rendered = False

    def render(self, camera: str, out: np.ndarray) -> None:
        """Camera ``camera``'s view of the current state (one ``world.render()`` per state for all cameras)."""
        if self._world is None:
            raise RuntimeError("IsaacBackend.render before connect()")
        if camera not in self._cameras.specs:
            raise KeyError(f"no camera {camera!r} (known: {', '.join(self._cameras.specs) or 'none'})")
        if not self._rendered:
            self._world.render()  # the app updates, physics does not step
            self._rendered = True
        self._cameras.copy_rgb(camera, out)

    def _measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        robot = self._robot
        return (np.asarray(robot.get_joint_positions(), dtype=float)[self._index],
                np.asarray(robot.get_joint_velocities(), dtype=float)[self._index],
                np.asarray(robot.get_measured_joint_efforts(), dtype=float)[self._index])

    @property
    def physics_info(self) -> dict[str, str]:
        return {"physics_dt": f"{self.physics_dt}", "substeps": str(self.substeps), "engine": "isaac-sim physx",
                "drive": "force", "isaac_sim": self.isaac_version,
                **({"render": "isaacsim.sensors.camera"} if self.cameras else {})}

    def close(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            self._cameras.close()
            self._robot = None
            self._frictions = None
            self._world = None
            app.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
