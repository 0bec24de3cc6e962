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

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    # -- the stage and PhysX ------------------------------------------------------
    def import_robot(self, robot: UrdfRobot, config: ImportConfig) -> str:
        """URDFImportRobot: links, their mass properties and the drives, into 'USD'."""
        self.robot, self.config = robot, config
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

    def joint_inertias(self) -> np.ndarray:
        """Inertia about each DOF's axis of the links beyond it, at the current pose (DOF order)."""
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

            def step(self, render: bool = True) -> None:
                fake.calls.append(("world.step", render))
                fake.step_physics()

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
        }


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
