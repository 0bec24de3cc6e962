"""A strict fake of the Isaac Sim 5.x modules the isaac backend imports.

Isaac Sim cannot run here (it needs an NVIDIA GPU and ships outside PyPI),
so tests/test_sim_isaac.py drives sim_node/isaac_backend.py against this
fake. It is strict where the real API would surprise a backend, following
NVIDIA's source (github.com/isaac-sim/IsaacSim at v5.0.0 / v5.1.0):

- ``_urdf.ImportConfig`` is a pybind11 class with fixed fields
  (bindings/isaacsim.asset.importer.urdf/IsaacsimAssetImporterUrdfBindings.cpp):
  an unknown attribute raises AttributeError, a field of the wrong type
  TypeError. Defaults are those of ``ImportConfig`` in include/.../IUrdf.h.
- Parsing (``URDFParseFile``) gives every joint the default drive of
  include/.../UrdfTypes.h: ``driveType = ACCELERATION``, a position target,
  ``strength`` = 25**2 (plugins/.../UrdfParser.cpp computeSimpleStiffness)
  and the URDF damping. ``URDFImportRobot`` writes them to USD unchanged, in
  USD's units of per degree (plugins/.../UrdfImporter.cpp configureDriveAPI).
- A link without ``<inertial>`` gets no authored mass (the importer only
  warns "No mass specified"), so PhysX falls back to 1 kg, its rule for a
  body with neither mass nor shapes (PxRigidBodyExt::updateMassAndInertia);
  the importer authors a 1e-4 kg*m^2 isotropic inertia for it. A root link
  without mass under ``fix_base`` gets mass 0 (UrdfImporter.cpp).
- The articulation's ``dof_names`` is None until ``world.reset()``
  initializes it (isaacsim.core.prims Articulation.dof_names), and its
  setters only warn and do nothing before that.
- Run-time values (gains per radian, max efforts, armatures, frictions, body
  masses and inertias) live in the PhysX view and are lost on a stop: every
  ``world.reset()`` (a stop and a play) reloads them from USD. The real
  isaacsim.core ``Articulation._on_post_reset`` re-applies the last
  ``set_gains``; this fake does not, so a backend must set what it needs
  after every reset itself.
- Each physics step moves every DOF by its drive, computed implicitly as
  PhysX does (PxArticulationDrive: stiffness in torque/rad for eFORCE,
  (rad/s^2)/rad for eACCELERATION): an acceleration drive gives
  q'' = kp*(q* - q) - kd*q' whatever the inertia; a force drive gives a torque
  kp*(q* - q) - kd*q' divided by the joint's inertia (the links beyond it from
  the imported URDF, about its axis at the current pose, plus the armature).
  The drive's output is capped at its max force, taken in the output's units.
  Viscous friction and dry friction (effort units) act on top. There is no
  gravity and no coupling between joints: a model of a drive, not of an arm.
- ``isaacsim.sensors.camera.Camera`` (isaacsim/sensors/camera/camera.py)
  takes the real constructor's arguments (``resolution`` is (width,
  height)); a new prim gets the UsdGeomCamera fallbacks (focal length 50,
  apertures 20.955 x 15.2908 in tenths of a stage unit, clipping 1 to 1e6
  stage units) and, as the constructor does, a local orientation of
  (1, 0, 0, 0) in the *world* camera axes and a vertical aperture made to
  fit the aspect. ``set_local_pose`` / ``set_world_pose`` default to
  ``camera_axes="world"`` and convert exactly as the source does (its
  W_U / R_U matrices), so a USD-convention quaternion given without
  ``camera_axes="usd"`` turns the camera. Apertures keep square pixels the
  source's way. The pose is held relative to the parent prim: a camera
  under a link prim moves with the link in this fake's kinematics; one under
  a prim that does not exist sits under a typeless ancestor at the origin,
  as USD's DefinePrim leaves it. ``initialize()`` is refused before a
  ``world.reset()`` (its docstring: "to be called ... after a reset of the
  world"); before it ``get_rgba`` warns and returns None (no rgb annotator),
  after it an empty array until a render; ``world.render()`` (or
  ``world.step(render=True)``) gives each camera a (height, width, 4) uint8
  frame whose R is the column, G the row (top down), B the render's number,
  and records the camera's world pose at that render (``rendered_pose``).

``FakeIsaac(version="6.0.1")`` fakes Isaac Sim 6.x instead: its URDF
importer is ``URDFImporter`` / ``URDFImporterConfig`` and the 5.x URDF
commands are gone (source/extensions/isaacsim.asset.importer.urdf at v6.0.1).
"""

from __future__ import annotations

import enum
import math
import sys
import types
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roarm.joints import NAMES
from sim_node.urdf import URDF_JOINTS

NATURAL_FREQUENCY = 25.0  # UrdfJointDrive.naturalFrequency default
PHYSX_DEFAULT_MASS = 1.0  # kg, a body with neither mass nor collision shapes
IMPORTER_NO_INERTIA = 1e-4  # kg*m^2, isotropic, for a link without inertia or colliders
RAD = 180.0 / math.pi  # USD angular drive gains are per degree


class UrdfJointTargetType(enum.IntEnum):
    JOINT_DRIVE_NONE = 0
    JOINT_DRIVE_POSITION = 1
    JOINT_DRIVE_VELOCITY = 2


class UrdfJointDriveType(enum.IntEnum):
    JOINT_DRIVE_ACCELERATION = 0
    JOINT_DRIVE_FORCE = 2


class UrdfJointType(enum.IntEnum):
    JOINT_REVOLUTE = 0
    JOINT_CONTINUOUS = 1
    JOINT_PRISMATIC = 2
    JOINT_FIXED = 3


class ImportConfig:
    """``_urdf.ImportConfig``: the fields and defaults of the real binding, nothing else."""

    _FIELDS: dict[str, tuple[type, Any]] = {
        "merge_fixed_joints": (bool, True),
        "convex_decomp": (bool, False),
        "import_inertia_tensor": (bool, True),
        "fix_base": (bool, True),
        "self_collision": (bool, False),
        "density": (float, 0.0),
        "default_drive_type": (UrdfJointTargetType, UrdfJointTargetType.JOINT_DRIVE_POSITION),
        "subdivision_scheme": (int, 0),
        "default_drive_strength": (float, 1e3),
        "default_position_drive_damping": (float, 1e2),
        "distance_scale": (float, 1.0),
        "up_vector": (tuple, (0.0, 0.0, 1.0)),
        "create_physics_scene": (bool, False),
        "make_default_prim": (bool, False),
        "collision_from_visuals": (bool, False),
        "replace_cylinders_with_capsules": (bool, False),
        "parse_mimic": (bool, True),
        "override_joint_dynamics": (bool, False),
    }

    def __init__(self) -> None:
        for name, (_kind, default) in self._FIELDS.items():
            object.__setattr__(self, name, default)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._FIELDS:
            raise AttributeError(f"'ImportConfig' object has no attribute '{name}'")
        kind = self._FIELDS[name][0]
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        elif not isinstance(value, kind):
            raise TypeError(f"ImportConfig.{name}: incompatible type {type(value).__name__}, expected {kind.__name__}")
        object.__setattr__(self, name, value)


def _setter(name: str) -> Any:
    def set_field(self: ImportConfig, value: Any) -> None:
        setattr(self, name, UrdfJointTargetType(value) if name == "default_drive_type" else value)
    return set_field


for _name in ImportConfig._FIELDS:
    if _name != "up_vector":
        setattr(ImportConfig, f"set_{_name}", _setter(_name))


@dataclass
class UrdfJointDrive:
    target: float = 0.0
    strength: float = 0.0
    damping: float = 0.0
    target_type: UrdfJointTargetType = UrdfJointTargetType.JOINT_DRIVE_POSITION
    drive_type: UrdfJointDriveType = UrdfJointDriveType.JOINT_DRIVE_ACCELERATION

    def set_strength(self, value: float) -> None:
        self.strength = float(value)

    def set_damping(self, value: float) -> None:
        self.damping = float(value)

    def set_target_type(self, value: int) -> None:
        self.target_type = UrdfJointTargetType(value)

    def set_drive_type(self, value: int) -> None:
        self.drive_type = UrdfJointDriveType(value)


@dataclass
class UrdfJoint:
    name: str
    type: UrdfJointType
    parent_link_name: str
    child_link_name: str
    origin: np.ndarray  # 4x4, parent link frame -> joint frame
    axis: np.ndarray
    effort: float
    damping: float
    friction: float
    drive: UrdfJointDrive = field(default_factory=UrdfJointDrive)


@dataclass
class UrdfLink:
    name: str
    mass: float | None
    com: np.ndarray
    inertia: np.ndarray | None  # 3x3


@dataclass
class UrdfRobot:
    name: str
    links: dict[str, UrdfLink]
    joints: dict[str, UrdfJoint]
    root_link: str


def _rotation(rpy: np.ndarray) -> np.ndarray:
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _vector(element: ET.Element | None, attr: str, default: str = "0 0 0") -> np.ndarray:
    return np.array([float(v) for v in (element.get(attr, default) if element is not None else default).split()])


def parse_urdf(path: str) -> UrdfRobot:
    """The parts of a URDF the fake physics needs, with the importer's default drives."""
    root = ET.parse(path).getroot()
    links: dict[str, UrdfLink] = {}
    for link in root.iter("link"):
        inertial = link.find("inertial")
        if inertial is None:
            links[link.get("name", "")] = UrdfLink(link.get("name", ""), None, np.zeros(3), None)
            continue
        mass_element, inertia_element = inertial.find("mass"), inertial.find("inertia")
        inertia = None
        if inertia_element is not None:
            i = {k: float(inertia_element.get(k, "0")) for k in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz")}
            inertia = np.array([[i["ixx"], i["ixy"], i["ixz"]], [i["ixy"], i["iyy"], i["iyz"]],
                                [i["ixz"], i["iyz"], i["izz"]]])
        links[link.get("name", "")] = UrdfLink(
            link.get("name", ""), float(mass_element.get("value", "0")) if mass_element is not None else None,
            _vector(inertial.find("origin"), "xyz"), inertia)
    joints: dict[str, UrdfJoint] = {}
    for joint in root.iter("joint"):
        origin = joint.find("origin")
        transform = np.eye(4)
        transform[:3, :3] = _rotation(_vector(origin, "rpy"))
        transform[:3, 3] = _vector(origin, "xyz")
        limit, dynamics = joint.find("limit"), joint.find("dynamics")
        kind = {"revolute": UrdfJointType.JOINT_REVOLUTE, "continuous": UrdfJointType.JOINT_CONTINUOUS,
                "prismatic": UrdfJointType.JOINT_PRISMATIC, "fixed": UrdfJointType.JOINT_FIXED}[joint.get("type", "")]
        damping = float(dynamics.get("damping", "0")) if dynamics is not None else 0.0
        drive = UrdfJointDrive(strength=NATURAL_FREQUENCY ** 2, damping=damping)  # computeSimpleStiffness
        parent, child = joint.find("parent"), joint.find("child")
        assert parent is not None and child is not None
        joints[joint.get("name", "")] = UrdfJoint(
            joint.get("name", ""), kind, parent.get("link", ""), child.get("link", ""), transform,
            _vector(joint.find("axis"), "xyz", "1 0 0"),
            float(limit.get("effort", "0")) if limit is not None else 0.0, damping,
            float(dynamics.get("friction", "0")) if dynamics is not None else 0.0, drive)
    children = {j.child_link_name for j in joints.values()}
    (root_link,) = [name for name in links if name not in children]
    return UrdfRobot(root.get("name", "robot"), links, joints, root_link)


@dataclass
class Dof:
    """One DOF as USD holds it (import values) and as PhysX runs it."""

    name: str
    joint: UrdfJoint
    usd_drive_type: str  # "acceleration" | "force"
    usd_stiffness: float  # per degree
    usd_damping: float  # per degree
    usd_max_force: float
    q: float = 0.0
    qd: float = 0.0
    target: float = 0.0
    drive_type: str = "acceleration"
    kp: float = 0.0  # per radian
    kd: float = 0.0
    max_force: float = 0.0
    armature: float = 0.0
    friction_coefficient: float = 0.0  # PhysX's unitless joint friction
    static_friction: float = 0.0  # N*m
    dynamic_friction: float = 0.0  # N*m
    viscous_friction: float = 0.0  # N*m*s/rad
    effort: float = 0.0


class FakeIsaac:
    """The modules, the stage and a PhysX stand-in, recording every call."""

    def __init__(self, version: str = "5.1.0-rc.19") -> None:
        self.version = version
        self.calls: list[tuple[str, Any]] = []
        self.warnings: list[str] = []
        self.app_started = False
        self.app_closed = False
        self.playing = False
        self.physics_dt = 0.0
        self.robot: UrdfRobot | None = None
        self.config: ImportConfig | None = None
        self.dofs: list[Dof] = []  # articulation DOF order
        self.bodies: list[str] = []  # articulation link order
        self.usd_masses = np.zeros(0)
        self.usd_inertias = np.zeros((0, 3, 3))
        self.masses = np.zeros(0)
        self.inertias = np.zeros((0, 3, 3))
        self.articulations: list[Any] = []
        self.robot_prim = ""
        self.resets = 0  # world.reset() calls
        self.frames_rendered = 0
        self.cameras: dict[str, Any] = {}  # prim path -> Camera

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    # -- the stage and PhysX ------------------------------------------------------
    def import_robot(self, robot: UrdfRobot, config: ImportConfig) -> str:
        """URDFImportRobot: links, their mass properties and the drives, into 'USD'."""
        self.robot, self.config = robot, config
        self.robot_prim = f"/{robot.name}"
        order: list[str] = []

        def visit(link: str) -> None:
            order.append(link)
            for joint in robot.joints.values():
                if joint.parent_link_name == link:
                    visit(joint.child_link_name)
        visit(robot.root_link)
        self.bodies = order
        masses, inertias = [], []
        for name in order:
            link = robot.links[name]
            if link.mass is not None:
                masses.append(link.mass)
            elif name == robot.root_link and config.fix_base:
                masses.append(0.0)
            else:
                masses.append(PHYSX_DEFAULT_MASS)
            if link.inertia is not None and config.import_inertia_tensor:
                inertias.append(link.inertia.copy())
            else:
                inertias.append(np.eye(3) * IMPORTER_NO_INERTIA)
        self.usd_masses = np.array(masses)
        self.usd_inertias = np.array(inertias)
        movable = {j.name: j for j in robot.joints.values() if j.type != UrdfJointType.JOINT_FIXED}
        # The DOF order differs from the bus order on purpose (bus joint i is DOF 5 - i).
        self.dofs = []
        for name in [URDF_JOINTS[n] for n in reversed(NAMES)]:
            joint = movable[name]
            drive = joint.drive
            assert drive.target_type == UrdfJointTargetType.JOINT_DRIVE_POSITION, "the fake models position drives"
            kind = "force" if drive.drive_type == UrdfJointDriveType.JOINT_DRIVE_FORCE else "acceleration"
            self.dofs.append(Dof(name, joint, kind, drive.strength, drive.damping,
                                 joint.effort if joint.effort > 0 else math.inf))
        assert len(movable) == len(self.dofs), "the fake expects the six arm joints only"
        return f"/{robot.name}/root_joint"

    def play(self) -> None:
        """Timeline play: PhysX reads everything from USD."""
        assert self.robot is not None, "nothing imported"
        self.playing = True
        self.masses = self.usd_masses.copy()
        self.inertias = self.usd_inertias.copy()
        for dof in self.dofs:
            dof.drive_type = dof.usd_drive_type
            dof.kp, dof.kd = dof.usd_stiffness * RAD, dof.usd_damping * RAD
            dof.max_force = dof.usd_max_force
            dof.armature = 0.0
            dof.friction_coefficient = dof.joint.friction
            dof.static_friction = dof.dynamic_friction = dof.viscous_friction = 0.0
            dof.q = dof.qd = dof.target = dof.effort = 0.0
        for articulation in self.articulations:
            articulation.initialized = True

    def stop(self) -> None:
        self.playing = False

    def kinematics(self) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """World frame of every link prim (the robot prim at the origin) and each DOF's (point, axis), now."""
        assert self.robot is not None
        robot, q = self.robot, {d.name: d.q for d in self.dofs}
        frames: dict[str, np.ndarray] = {robot.root_link: np.eye(4)}
        axes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        pending = [robot.root_link]
        while pending:
            parent = pending.pop()
            for joint in robot.joints.values():
                if joint.parent_link_name != parent:
                    continue
                at_joint = frames[parent] @ joint.origin
                motion = np.eye(4)
                if joint.name in q:
                    axis = joint.axis / np.linalg.norm(joint.axis)
                    motion[:3, :3] = _axis_rotation(axis, q[joint.name])
                    axes[joint.name] = (at_joint[:3, 3], at_joint[:3, :3] @ axis)
                frames[joint.child_link_name] = at_joint @ motion
                pending.append(joint.child_link_name)
        return frames, axes

    def prims(self) -> set[str]:
        """The non-camera prims on the stage: the robot prim and its link prims."""
        if self.robot is None:
            return set()
        return {self.robot_prim, *(f"{self.robot_prim}/{link}" for link in self.robot.links)}

    def prim_world(self, path: str) -> np.ndarray:
        """World pose of the prim at ``path`` now: a link prim moves with its link; the robot prim,
        the stage root and the typeless prims USD defines for missing ancestors are at the origin."""
        if self.robot is not None and path.startswith(self.robot_prim + "/"):
            link = path[len(self.robot_prim) + 1:]
            frames, _axes = self.kinematics()
            if link in frames:
                return frames[link]
        return np.eye(4)

    def render(self) -> None:
        """world.render(): the app updates (physics does not step) and every render product gets a frame."""
        self.calls.append(("world.render", None))
        self.frames_rendered += 1
        for camera in self.cameras.values():
            camera._render(self.frames_rendered)

    def joint_inertias(self) -> np.ndarray:
        """Inertia about each DOF's axis of the links beyond it, at the current pose (DOF order)."""
        frames, axes = self.kinematics()
        robot = self.robot
        assert robot is not None
        out = np.zeros(len(self.dofs))
        for i, dof in enumerate(self.dofs):
            point, axis = axes[dof.name]
            beyond = self._descendants(dof.joint.child_link_name)
            for b, name in enumerate(self.bodies):
                if name not in beyond:
                    continue
                frame = frames[name]
                r = frame[:3, :3] @ robot.links[name].com + frame[:3, 3] - point
                lever = r - axis * (r @ axis)
                rotated = frame[:3, :3] @ self.inertias[b] @ frame[:3, :3].T
                out[i] += self.masses[b] * float(lever @ lever) + float(axis @ rotated @ axis)
        return out

    def _descendants(self, link: str) -> set[str]:
        assert self.robot is not None
        found, pending = {link}, [link]
        while pending:
            parent = pending.pop()
            for joint in self.robot.joints.values():
                if joint.parent_link_name == parent:
                    found.add(joint.child_link_name)
                    pending.append(joint.child_link_name)
        return found

    def step_physics(self) -> None:
        """One physics step of every DOF: implicit drive, force cap, viscous and dry friction."""
        assert self.playing, "world.step while the timeline is stopped"
        dt = self.physics_dt
        for dof, link_inertia in zip(self.dofs, self.joint_inertias()):
            inertia = link_inertia + dof.armature
            # The drive's output is an acceleration (acceleration drive) or a torque (force drive);
            # its cap, max_force, is taken in the same units.
            per_output = 1.0 if dof.drive_type == "acceleration" else inertia
            error = dof.target - dof.q
            qd = (dof.qd + dt * dof.kp * error / per_output) / (
                1.0 + dt * ((dof.kd + dt * dof.kp) / per_output + dof.viscous_friction / inertia))
            output = dof.kp * (error - dt * qd) - dof.kd * qd
            if abs(output) > dof.max_force:
                output = math.copysign(dof.max_force, output)
                qd = (dof.qd + dt * output / per_output) / (1.0 + dt * dof.viscous_friction / inertia)
            torque = output * inertia / per_output
            if abs(qd) <= dt * dof.static_friction / inertia:
                qd = 0.0
            else:
                qd -= math.copysign(dt * dof.dynamic_friction / inertia, qd)
            dof.qd, dof.q, dof.effort = qd, dof.q + dt * qd, torque

    def dof_values(self, attr: str) -> np.ndarray:
        """A per-DOF value in bus order, for tests."""
        by_name = {d.name: getattr(d, attr) for d in self.dofs}
        return np.array([by_name[URDF_JOINTS[n]] for n in NAMES])

    def named(self, name: str) -> list[Any]:
        return [args for call, args in self.calls if call == name]

    # -- the modules ------------------------------------------------------------------
    def modules(self) -> dict[str, types.ModuleType]:
        fake = self

        def module(name: str, **attrs: Any) -> types.ModuleType:
            mod = types.ModuleType(name)
            mod.__dict__.update(attrs)
            return mod

        class SimulationApp:
            def __init__(self, config: dict[str, Any]) -> None:
                fake.calls.append(("SimulationApp", config))
                fake.app_started = True

            def close(self) -> None:
                fake.calls.append(("app.close", None))
                fake.app_closed = True

        def get_version() -> tuple[str, ...]:
            assert fake.app_started, "isaacsim.core.version used before SimulationApp"
            core, _, pre = fake.version.partition("-")
            major, minor, patch = core.split(".")
            tag, _, build = pre.partition(".")
            return (core, pre, major, minor, patch, tag, build, "")

        def require_app(what: str) -> None:
            assert fake.app_started, f"{what} used before SimulationApp"

        def parse_file(urdf_path: str, import_config: ImportConfig) -> UrdfRobot:
            assert isinstance(import_config, ImportConfig)
            robot = parse_urdf(urdf_path)
            assert not import_config.merge_fixed_joints, "the fake does not merge fixed joints"
            for joint in robot.joints.values():
                joint.drive.target_type = import_config.default_drive_type
            return robot

        def execute(name: str, **kwargs: Any) -> tuple[bool, Any]:
            require_app("omni.kit.commands")
            fake.calls.append((name, kwargs))
            if fake.major >= 6:
                return False, None  # Kit logs "Can't execute command" for an unregistered command
            if name == "URDFCreateImportConfig":
                return True, ImportConfig()
            if name == "URDFParseFile":
                return True, parse_file(kwargs["urdf_path"], kwargs["import_config"])
            if name == "URDFImportRobot":
                assert kwargs["urdf_robot"] is not None
                root = fake.import_robot(kwargs["urdf_robot"], kwargs["import_config"])
                return True, root if kwargs.get("get_articulation_root") else f"/{kwargs['urdf_robot'].name}"
            if name == "URDFParseAndImportFile":
                robot = parse_file(kwargs["urdf_path"], kwargs["import_config"])
                root = fake.import_robot(robot, kwargs["import_config"])
                return True, root if kwargs.get("get_articulation_root") else f"/{robot.name}"
            raise AssertionError(f"unexpected command {name}")

        def enable_extension(name: str) -> bool:
            require_app("enable_extension")
            fake.calls.append(("enable_extension", name))
            return True

        class Scene:
            def add(self, obj: Any) -> Any:
                fake.calls.append(("scene.add", obj))
                fake.articulations.append(obj._articulation_view)  # world.reset() initializes what the scene holds
                return obj

        class World:
            def __init__(self, physics_dt: float | None = None, rendering_dt: float | None = None,
                         stage_units_in_meters: float | None = None, **kwargs: Any) -> None:
                require_app("World")
                fake.calls.append(("World", {"physics_dt": physics_dt, "rendering_dt": rendering_dt,
                                             "stage_units_in_meters": stage_units_in_meters, **kwargs}))
                fake.physics_dt = float(physics_dt or 1.0 / 60.0)
                self.scene = Scene()

            def reset(self, soft: bool = False) -> None:
                fake.calls.append(("world.reset", None))
                fake.stop()
                fake.play()
                fake.resets += 1

            def step(self, render: bool = True) -> None:
                fake.calls.append(("world.step", render))
                fake.step_physics()
                if render:
                    fake.render()

            def render(self) -> None:
                fake.render()

        def warn_uninitialized(view: Any) -> bool:
            if not view.initialized:
                fake.warnings.append("Articulation needs to be initialized.")
                return True
            return False

        def dof_rows(values: Any, joint_indices: Any) -> tuple[np.ndarray, np.ndarray]:
            values = np.asarray(values, dtype=float)
            indices = np.arange(len(fake.dofs)) if joint_indices is None else np.asarray(joint_indices).ravel()
            return np.broadcast_to(values, (1, len(indices)))[0], indices

        class View:
            """isaacsim.core.prims.Articulation (the view SingleArticulation wraps)."""

            def __init__(self) -> None:
                self.initialized = False

            @property
            def dof_names(self) -> list[str] | None:
                if warn_uninitialized(self):
                    return None
                return [d.name for d in fake.dofs]

            def get_dof_index(self, dof_name: str) -> int:
                assert self.initialized, "get_dof_index before the articulation is initialized"
                return [d.name for d in fake.dofs].index(dof_name)

            def set_gains(self, kps: Any = None, kds: Any = None, indices: Any = None, joint_indices: Any = None,
                          joint_names: Any = None, save_to_usd: bool = False) -> None:
                if warn_uninitialized(self):
                    return
                fake.calls.append(("set_gains", (np.array(kps, dtype=float), np.array(kds, dtype=float))))
                kps_row, idx = dof_rows(kps, joint_indices)
                kds_row, _ = dof_rows(kds, joint_indices)
                for j, kp, kd in zip(idx, kps_row, kds_row):
                    dof = fake.dofs[j]
                    if fake.playing and not save_to_usd:
                        dof.kp, dof.kd = kp, kd
                    else:  # written to USD per degree: takes effect at the next play
                        dof.usd_stiffness, dof.usd_damping = kp / RAD, kd / RAD

            def set_max_efforts(self, values: Any, indices: Any = None, joint_indices: Any = None) -> None:
                if warn_uninitialized(self):
                    return
                fake.calls.append(("set_max_efforts", (np.array(values, dtype=float), np.array(joint_indices))))
                row, idx = dof_rows(values, joint_indices)
                for j, value in zip(idx, row):
                    fake.dofs[j].max_force = value

            def set_armatures(self, values: Any, indices: Any = None, joint_indices: Any = None) -> None:
                if warn_uninitialized(self):
                    return
                fake.calls.append(("set_armatures", np.array(values, dtype=float)))
                row, idx = dof_rows(values, joint_indices)
                for j, value in zip(idx, row):
                    fake.dofs[j].armature = value

            def set_friction_coefficients(self, values: Any, indices: Any = None, joint_indices: Any = None) -> None:
                if warn_uninitialized(self):
                    return
                fake.calls.append(("set_friction_coefficients", np.array(values, dtype=float)))
                row, idx = dof_rows(values, joint_indices)
                for j, value in zip(idx, row):
                    fake.dofs[j].friction_coefficient = value

            def get_body_masses(self) -> np.ndarray | None:
                if warn_uninitialized(self):
                    return None
                return fake.masses[None, :].copy()

            def set_body_masses(self, values: Any, indices: Any = None, body_indices: Any = None) -> None:
                if warn_uninitialized(self):
                    return
                fake.calls.append(("set_body_masses", np.array(values, dtype=float)))
                fake.masses = np.array(values, dtype=float).reshape(len(fake.bodies))

            def get_body_inertias(self) -> np.ndarray | None:
                if warn_uninitialized(self):
                    return None
                return fake.inertias.reshape(1, len(fake.bodies), 9).copy()

            def set_body_inertias(self, values: Any, indices: Any = None, body_indices: Any = None) -> None:
                if warn_uninitialized(self):
                    return
                fake.calls.append(("set_body_inertias", np.array(values, dtype=float)))
                fake.inertias = np.array(values, dtype=float).reshape(len(fake.bodies), 3, 3)

        class Controller:
            """isaacsim.core.api ArticulationController."""

            def __init__(self, view: View) -> None:
                self._view = view

            def set_gains(self, kps: Any = None, kds: Any = None, save_to_usd: bool = False) -> None:
                self._view.set_gains(kps=np.asarray(kps)[None], kds=np.asarray(kds)[None], save_to_usd=save_to_usd)

            def set_max_efforts(self, values: Any, joint_indices: Any = None) -> None:
                self._view.set_max_efforts(values=np.asarray(values, dtype=float)[None], joint_indices=joint_indices)

        class SingleArticulation:
            def __init__(self, prim_path: str, name: str = "articulation", **kwargs: Any) -> None:
                require_app("SingleArticulation")
                fake.calls.append(("SingleArticulation", prim_path))
                self._articulation_view = View()
                self._controller = Controller(self._articulation_view)

            @property
            def dof_names(self) -> list[str] | None:
                return self._articulation_view.dof_names

            def get_dof_index(self, dof_name: str) -> int:
                return self._articulation_view.get_dof_index(dof_name)

            def get_articulation_controller(self) -> Controller:
                return self._controller

            def _require_physics(self) -> None:
                assert self._articulation_view.initialized and fake.playing, "articulation used before world.reset()"

            def set_joint_positions(self, positions: Any, joint_indices: Any = None) -> None:
                self._require_physics()
                row, idx = dof_rows(positions, joint_indices)
                for j, value in zip(idx, row):
                    fake.dofs[j].q = value

            def set_joint_velocities(self, velocities: Any, joint_indices: Any = None) -> None:
                self._require_physics()
                row, idx = dof_rows(velocities, joint_indices)
                for j, value in zip(idx, row):
                    fake.dofs[j].qd = value

            def apply_action(self, control_actions: Any) -> None:
                self._require_physics()
                fake.calls.append(("apply_action", control_actions))
                row, idx = dof_rows(control_actions.joint_positions, control_actions.joint_indices)
                for j, value in zip(idx, row):
                    fake.dofs[j].target = value

            def get_joint_positions(self) -> np.ndarray:
                self._require_physics()
                return np.array([d.q for d in fake.dofs])

            def get_joint_velocities(self) -> np.ndarray:
                self._require_physics()
                return np.array([d.qd for d in fake.dofs])

            def get_measured_joint_efforts(self) -> np.ndarray:
                self._require_physics()
                return np.array([d.effort for d in fake.dofs])

        class ArticulationAction:
            def __init__(self, joint_positions: Any = None, joint_velocities: Any = None,
                         joint_efforts: Any = None, joint_indices: Any = None) -> None:
                self.joint_positions = None if joint_positions is None else np.array(joint_positions, dtype=float)
                self.joint_indices = None if joint_indices is None else np.array(joint_indices)

        class ExperimentalArticulation:
            """isaacsim.core.experimental.prims.Articulation (5.0, 5.1): the effort-unit friction API."""

            def __init__(self, paths: str | list[str], **kwargs: Any) -> None:
                require_app("isaacsim.core.experimental.prims.Articulation")
                fake.calls.append(("experimental.Articulation", paths))

            def is_physics_tensor_entity_valid(self) -> bool:
                return fake.playing

            @property
            def dof_names(self) -> list[str]:
                return [d.name for d in fake.dofs]

            def set_dof_friction_properties(self, static_frictions: Any = None, dynamic_frictions: Any = None,
                                            viscous_frictions: Any = None, *, indices: Any = None,
                                            dof_indices: Any = None) -> None:
                assert fake.playing, "tensor backend needed: with the timeline stopped this only writes USD"
                fake.calls.append(("set_dof_friction_properties",
                                   (static_frictions, dynamic_frictions, viscous_frictions, dof_indices)))
                for attr, values in (("static_friction", static_frictions), ("dynamic_friction", dynamic_frictions),
                                     ("viscous_friction", viscous_frictions)):
                    if values is None:
                        continue
                    row, idx = dof_rows(values, dof_indices)
                    for j, value in zip(idx, row):
                        setattr(fake.dofs[j], attr, float(value))
                for dof in fake.dofs:
                    assert dof.static_friction >= dof.dynamic_friction, "static friction below dynamic friction"

        class URDFImporterConfig:  # 6.x
            def __init__(self, **kwargs: Any) -> None:
                self.__dict__.update(kwargs)

        class URDFImporter:  # 6.x
            def __init__(self, config: Any = None) -> None:
                self.config = config

            def import_urdf(self, config: Any = None) -> str:
                raise AssertionError("the fake does not implement Isaac Sim 6.x's URDFImporter")

        camera_class = _camera_class(fake, require_app)

        if self.major >= 6:
            urdf_module = module("isaacsim.asset.importer.urdf", URDFImporter=URDFImporter,
                                 URDFImporterConfig=URDFImporterConfig)
        else:
            urdf_types = module("isaacsim.asset.importer.urdf._urdf", ImportConfig=ImportConfig,
                                UrdfJointTargetType=UrdfJointTargetType, UrdfJointDriveType=UrdfJointDriveType,
                                UrdfJointType=UrdfJointType)
            urdf_module = module("isaacsim.asset.importer.urdf", _urdf=urdf_types)
        return {
            "isaacsim": module("isaacsim", SimulationApp=SimulationApp),
            "omni": module("omni"),
            "omni.kit": module("omni.kit"),
            "omni.kit.commands": module("omni.kit.commands", execute=execute),
            "isaacsim.core": module("isaacsim.core"),
            "isaacsim.core.version": module("isaacsim.core.version", get_version=get_version),
            "isaacsim.core.api": module("isaacsim.core.api", World=World),
            "isaacsim.core.prims": module("isaacsim.core.prims", SingleArticulation=SingleArticulation),
            "isaacsim.core.experimental": module("isaacsim.core.experimental"),
            "isaacsim.core.experimental.prims": module("isaacsim.core.experimental.prims",
                                                       Articulation=ExperimentalArticulation),
            "isaacsim.core.utils": module("isaacsim.core.utils"),
            "isaacsim.core.utils.extensions": module("isaacsim.core.utils.extensions",
                                                     enable_extension=enable_extension),
            "isaacsim.core.utils.types": module("isaacsim.core.utils.types", ArticulationAction=ArticulationAction),
            "isaacsim.asset": module("isaacsim.asset"),
            "isaacsim.asset.importer": module("isaacsim.asset.importer"),
            "isaacsim.asset.importer.urdf": urdf_module,
            "isaacsim.sensors": module("isaacsim.sensors"),
            "isaacsim.sensors.camera": module("isaacsim.sensors.camera", Camera=camera_class),
        }


# isaacsim.sensors.camera camera.py (v5.0.0 = v5.1.0 here): camera-axes conventions, read right to left
# (U_W: from the World convention, +x forward +z up, to USD's, -z forward +y up; R: ROS, +z forward +y down).
U_R_TRANSFORM = np.array([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]])
R_U_TRANSFORM = np.array([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 0], [0, 0, 0, 1]])
W_U_TRANSFORM = np.array([[0, 0, -1, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
U_W_TRANSFORM = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]])
USD_CAMERA_TENTHS_TO_STAGE_UNIT = 10.0
# UsdGeomCamera's schema fallbacks (tenths of a stage unit for the lens, stage units for the clip).
USD_CAMERA_DEFAULTS = {"focalLength": 50.0, "horizontalAperture": 20.955, "verticalAperture": 15.2908,
                       "clippingRange": (1.0, 1000000.0)}
CAMERA_AXES = ("world", "ros", "usd")


def quat_matrix(quat: Any) -> np.ndarray:
    """(w, x, y, z) -> 3x3 rotation (the fake's own, independent of roarm.camera)."""
    w, x, y, z = np.asarray(quat, dtype=float) / np.linalg.norm(np.asarray(quat, dtype=float))
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def matrix_quat(m: np.ndarray) -> np.ndarray:
    """3x3 rotation -> (w, x, y, z) with w >= 0, by the eigenvector of Bar-Itzhack's K matrix."""
    k = np.array([[m[0, 0] - m[1, 1] - m[2, 2], m[1, 0] + m[0, 1], m[2, 0] + m[0, 2], m[2, 1] - m[1, 2]],
                  [m[1, 0] + m[0, 1], m[1, 1] - m[0, 0] - m[2, 2], m[2, 1] + m[1, 2], m[0, 2] - m[2, 0]],
                  [m[2, 0] + m[0, 2], m[2, 1] + m[1, 2], m[2, 2] - m[0, 0] - m[1, 1], m[1, 0] - m[0, 1]],
                  [m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], m[0, 0] + m[1, 1] + m[2, 2]]]) / 3.0
    values, vectors = np.linalg.eigh(k)
    x, y, z, w = vectors[:, int(np.argmax(values))]
    q = np.array([w, x, y, z])
    return -q if q[0] < 0 else q


def _axes_check(camera_axes: str) -> None:
    if camera_axes not in CAMERA_AXES:
        raise Exception(f"camera axes passed {camera_axes} is not supported: accepted values are "
                        "[world, ros, usd] only")


def _to_usd(rotation: np.ndarray, camera_axes: str) -> np.ndarray:
    """Camera.set_*_pose: a rotation given in ``camera_axes`` as the USD camera's rotation."""
    if camera_axes == "world":
        return rotation @ W_U_TRANSFORM[:3, :3]
    if camera_axes == "ros":
        return rotation @ R_U_TRANSFORM[:3, :3]
    return rotation


def _from_usd(rotation: np.ndarray, camera_axes: str) -> np.ndarray:
    """Camera.get_*_pose: the USD camera's rotation given in ``camera_axes``."""
    if camera_axes == "world":
        return rotation @ U_W_TRANSFORM[:3, :3]
    if camera_axes == "ros":
        return rotation @ U_R_TRANSFORM[:3, :3]
    return rotation


def _camera_class(fake: FakeIsaac, require_app: Any) -> type:
    """``isaacsim.sensors.camera.Camera`` bound to one FakeIsaac (module docstring: what it holds to)."""

    class Camera:
        def __init__(self, prim_path: str, name: str = "camera", frequency: int | None = None,
                     dt: float | None = None, resolution: tuple[int, int] | None = None, position: Any = None,
                     orientation: Any = None, translation: Any = None, render_product_path: str | None = None,
                     annotator_device: str | None = None) -> None:
            require_app("isaacsim.sensors.camera.Camera")
            fake.calls.append(("Camera", {"prim_path": prim_path, "resolution": resolution}))
            if frequency is not None and dt is not None:
                raise Exception("Frequency and dt can't be both specified.")
            if resolution is None:
                resolution = (128, 128)
            assert len(resolution) == 2 and all(isinstance(v, int) and v > 0 for v in resolution), \
                f"resolution is (width, height) in pixels, got {resolution!r}"
            if prim_path in fake.prims() and prim_path not in fake.cameras:
                raise Exception("prim path does not correspond to a Camera prim.")  # the robot or a link
            self.prim_path = prim_path
            self.name = name
            self._resolution = tuple(resolution)
            self._render_product_path = render_product_path
            self._annotators: set[str] = set()
            self._frame: np.ndarray | None = None
            self.attributes: dict[str, Any] = dict(USD_CAMERA_DEFAULTS)
            self.local_translation = np.zeros(3)
            self.local_rotation = np.eye(3)  # USD camera axes, in the parent prim
            self.rendered_pose: np.ndarray | None = None  # world pose (USD axes) at the last render
            self.destroyed = False
            existing = fake.cameras.get(prim_path)
            if existing is not None:
                self.local_translation, self.local_rotation = existing.local_translation, existing.local_rotation
                self.attributes = existing.attributes
            elif orientation is None:
                orientation = [1, 0, 0, 0]
            fake.cameras[prim_path] = self
            if position is not None and orientation is not None:
                self.set_world_pose(position=position, orientation=orientation)
            elif translation is not None and orientation is not None:
                self.set_local_pose(translation=translation, orientation=orientation)
            elif orientation is not None:
                self.set_local_pose(orientation=orientation)
            self._maintain_square_pixel_aperture("horizontal")

        @property
        def parent_path(self) -> str:
            return self.prim_path.rsplit("/", 1)[0] or "/"

        # -- life cycle ---------------------------------------------------------------
        def initialize(self, physics_sim_view: Any = None, attach_rgb_annotator: bool = True) -> None:
            assert fake.resets > 0 and fake.playing, \
                "Camera.initialize() is to be called after a reset of the world (world.reset())"
            fake.calls.append(("Camera.initialize", self.prim_path))
            if not self._render_product_path:
                self._render_product_path = f"/Render/RenderProduct_{self.name}"
            if attach_rgb_annotator:
                self._annotators.add("rgb")
            self._frame = np.empty((0,), np.uint8)  # the annotator holds nothing until a render

        def destroy(self) -> None:
            fake.calls.append(("Camera.destroy", self.prim_path))
            self._annotators.clear()
            self._render_product_path = None
            self.destroyed = True

        def get_render_product_path(self) -> str | None:
            return self._render_product_path

        def _render(self, frame_number: int) -> None:
            if self._render_product_path is None or self.destroyed or "rgb" not in self._annotators:
                return
            width, height = self._resolution
            self.rendered_pose = self._world_matrix()
            image = np.empty((height, width, 4), np.uint8)
            image[:, :, 0] = (np.arange(width) % 251)[None, :]  # R: the column, G: the row (top down)
            image[:, :, 1] = (np.arange(height) % 241)[:, None]
            image[:, :, 2] = frame_number % 256  # B: which render
            image[:, :, 3] = 255
            self._frame = image

        # -- frames -------------------------------------------------------------------
        def get_rgba(self, device: str | None = None) -> np.ndarray | None:
            if "rgb" not in self._annotators:
                fake.warnings.append(f"Annotator 'rgb' not attached to {self._render_product_path}")
                return None
            assert self._frame is not None
            return self._frame.copy()

        def get_rgb(self, device: str | None = None) -> np.ndarray | None:
            data = self.get_rgba(device)
            if data is None or data.shape[0] == 0:
                return None
            return data[:, :, :3]

        # -- resolution and lens ------------------------------------------------------
        def get_resolution(self) -> tuple[int, int]:
            return self._resolution  # type: ignore[return-value]

        def set_resolution(self, value: tuple[int, int], maintain_square_pixels: bool = True) -> None:
            assert self._render_product_path is not None, "set_resolution needs the render product of initialize()"
            self._resolution = tuple(value)
            if maintain_square_pixels:
                self._maintain_square_pixel_aperture("horizontal")

        def get_aspect_ratio(self) -> float:
            width, height = self._resolution
            return width / float(height)

        def _maintain_square_pixel_aperture(self, mode: str = "horizontal") -> None:
            aspect = self.get_aspect_ratio()
            horizontal = self.get_horizontal_aperture()
            vertical = self.get_vertical_aperture()
            if mode != "vertical":
                expected = horizontal / aspect
                if not np.isclose(vertical, expected, rtol=1e-5, atol=1e-8):
                    fake.warnings.append(f"Setting 'verticalAperture' to {expected} to ensure square pixels.")
                    self.attributes["verticalAperture"] = expected * USD_CAMERA_TENTHS_TO_STAGE_UNIT
            else:
                expected = vertical * aspect
                if not np.isclose(horizontal, expected, rtol=1e-5, atol=1e-8):
                    fake.warnings.append(f"Setting 'horizontalAperture' to {expected} to ensure square pixels.")
                    self.attributes["horizontalAperture"] = expected * USD_CAMERA_TENTHS_TO_STAGE_UNIT

        def get_focal_length(self) -> float:
            return self.attributes["focalLength"] / USD_CAMERA_TENTHS_TO_STAGE_UNIT

        def set_focal_length(self, value: float) -> None:
            self.attributes["focalLength"] = float(value) * USD_CAMERA_TENTHS_TO_STAGE_UNIT

        def get_horizontal_aperture(self) -> float:
            return self.attributes["horizontalAperture"] / USD_CAMERA_TENTHS_TO_STAGE_UNIT

        def set_horizontal_aperture(self, value: float, maintain_square_pixels: bool = True) -> None:
            self.attributes["horizontalAperture"] = float(value) * USD_CAMERA_TENTHS_TO_STAGE_UNIT
            if maintain_square_pixels:
                self._maintain_square_pixel_aperture("horizontal")

        def get_vertical_aperture(self) -> float:
            return self.attributes["verticalAperture"] / USD_CAMERA_TENTHS_TO_STAGE_UNIT

        def set_vertical_aperture(self, value: float, maintain_square_pixels: bool = True) -> None:
            self.attributes["verticalAperture"] = float(value) * USD_CAMERA_TENTHS_TO_STAGE_UNIT
            if maintain_square_pixels:
                self._maintain_square_pixel_aperture("vertical")

        def get_clipping_range(self) -> tuple[float, float]:
            near, far = self.attributes["clippingRange"]
            return near, far

        def set_clipping_range(self, near_distance: float | None = None, far_distance: float | None = None) -> None:
            near, far = self.attributes["clippingRange"]
            self.attributes["clippingRange"] = (near if near_distance is None else float(near_distance),
                                                far if far_distance is None else float(far_distance))

        def get_horizontal_fov(self) -> float:
            return 2 * math.atan(self.get_horizontal_aperture() / (2 * self.get_focal_length()))

        def get_vertical_fov(self) -> float:
            width, height = self._resolution  # the source's own approximation: linear in the aspect
            return self.get_horizontal_fov() * (height / float(width))

        def implied_intrinsics(self) -> tuple[float, float, float, float]:
            """(fx, fy, cx, cy) in pixels of the USD pinhole (not in the real API; for tests):
            fx = width * focal / horizontal aperture, fy = height * focal / vertical aperture."""
            width, height = self._resolution
            focal = self.get_focal_length()
            return (width * focal / self.get_horizontal_aperture(), height * focal / self.get_vertical_aperture(),
                    width / 2.0, height / 2.0)

        # -- poses --------------------------------------------------------------------
        def _world_matrix(self) -> np.ndarray:
            local = np.eye(4)
            local[:3, :3], local[:3, 3] = self.local_rotation, self.local_translation
            return fake.prim_world(self.parent_path) @ local

        def set_local_pose(self, translation: Any = None, orientation: Any = None,
                           camera_axes: str = "world") -> None:
            _axes_check(camera_axes)
            if orientation is not None:
                self.local_rotation = _to_usd(quat_matrix(orientation), camera_axes)
            if translation is not None:
                self.local_translation = np.asarray(translation, dtype=float).reshape(3).copy()

        def get_local_pose(self, camera_axes: str = "world") -> tuple[np.ndarray, np.ndarray]:
            _axes_check(camera_axes)
            return self.local_translation.copy(), matrix_quat(_from_usd(self.local_rotation, camera_axes))

        def set_world_pose(self, position: Any = None, orientation: Any = None, camera_axes: str = "world") -> None:
            _axes_check(camera_axes)
            world = self._world_matrix()
            if orientation is not None:
                world[:3, :3] = _to_usd(quat_matrix(orientation), camera_axes)
            if position is not None:
                world[:3, 3] = np.asarray(position, dtype=float).reshape(3)
            local = np.linalg.inv(fake.prim_world(self.parent_path)) @ world
            self.local_rotation, self.local_translation = local[:3, :3], local[:3, 3]

        def get_world_pose(self, camera_axes: str = "world") -> tuple[np.ndarray, np.ndarray]:
            _axes_check(camera_axes)
            world = self._world_matrix()
            return world[:3, 3].copy(), matrix_quat(_from_usd(world[:3, :3], camera_axes))

    return Camera


def install(isaac: FakeIsaac, monkeypatch: Any) -> FakeIsaac:
    """Put the fake's modules in sys.modules for one test (pytest's monkeypatch undoes it)."""
    modules = isaac.modules()
    for name, mod in modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    # parent packages expose their children as attributes, as real imports do
    for name, mod in modules.items():
        parent, _, child = name.rpartition(".")
        if parent in modules:
            monkeypatch.setattr(modules[parent], child, mod, raising=False)
    return isaac


__all__ = ["FakeIsaac", "ImportConfig", "install"]
