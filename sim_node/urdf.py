"""A URDF of the RoArm-M3 built from the same chain as roarm.kinematics.

Isaac Sim imports robots from URDF; writing it from ``roarm.kinematics``'s
joint origins (and ``roarm.joints``' limits) keeps one source for the chain,
so the Isaac arm, the MuJoCo arm and the FK that judges Cartesian goals
cannot drift apart. Inertials only (masses from Waveshare's URDF, centre of
mass halfway to the next joint, rod-like inertia): the harness runs headless
and without contacts, so collision shapes would add nothing. ``visual=True``
adds simple shapes (a cylinder from each joint to the next, a sphere at each
joint) so a viewer such as Foxglove's 3D panel draws the arm from the same
chain; the recorder puts that version into every bag.

Every link carries an inertial, the frames ``world`` and ``hand_tcp`` a
negligible one: Isaac Sim 5.x's URDF importer authors no mass for a link
without ``<inertial>`` (it warns "No mass specified", plugins/.../
UrdfImporter.cpp at v5.1.0) and PhysX then gives a body with neither mass nor
shapes 1 kg, which at the TCP would outweigh the whole hand.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

import numpy as np

from roarm.joints import LOWER, MAX_TORQUE, MAX_VELOCITY, NAMES, UPPER
from roarm.kinematics import JOINT_ORIGINS, LINK5_TO_TCP, WORLD_TO_BASE

# Bus joint name -> URDF joint name (Waveshare's roarm_description).
URDF_JOINTS: dict[str, str] = {
    "base": "base_link_to_link1",
    "shoulder": "link1_to_link2",
    "elbow": "link2_to_link3",
    "wrist": "link3_to_link4",
    "roll": "link4_to_link5",
    "gripper": "link5_to_gripper_link",
}
LINKS = ("base_link", "link1", "link2", "link3", "link4", "link5", "gripper_link")
MASSES = {"base_link": 0.256, "link1": 0.0729, "link2": 0.0703, "link3": 0.0216, "link4": 0.0100,
          "link5": 0.0154, "gripper_link": 0.0029}
GRIPPER_ORIGIN = ((0.0, 0.018821, 0.052035), (-1.5708, -1.5708, 0.0))
# The frames without a body: the importer's own "negligible mass" (kNegligibleMass in UrdfImporter.cpp).
NEGLIGIBLE_MASS = 1e-5
FRAMES = ("world", "hand_tcp")


def _vec(values: tuple[float, ...] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _inertial(link: str, com: tuple[float, float, float], length: float) -> str:
    mass = MASSES.get(link, NEGLIGIBLE_MASS)
    inertia = mass * max(length, 0.02) ** 2 / 12  # a rod of the link's length, about any axis
    return (f'    <inertial><origin xyz="{_vec(com)}" rpy="0 0 0"/><mass value="{mass}"/>'
            f'<inertia ixx="{inertia:.6g}" ixy="0" ixz="0" iyy="{inertia:.6g}" iyz="0" izz="{inertia:.6g}"/>'
            "</inertial>\n")


LINK_RADIUS = 0.018  # m, the drawn thickness of a link
COLORS = {"base_link": "0.25 0.25 0.28 1", "link1": "0.95 0.55 0.1 1", "link2": "0.2 0.45 0.85 1",
          "link3": "0.95 0.55 0.1 1", "link4": "0.2 0.45 0.85 1", "link5": "0.95 0.55 0.1 1",
          "gripper_link": "0.3 0.3 0.3 1"}


def _segment(link: str, end: tuple[float, ...]) -> str:
    """A cylinder from the link's origin to ``end`` (its child joint), plus a sphere at the origin."""
    dx, dy, dz = (float(v) for v in end)
    length = math.sqrt(dx * dx + dy * dy + dz * dz)
    color = f'<material name="{link}_color"><color rgba="{COLORS[link]}"/></material>'
    parts = [f'    <visual><geometry><sphere radius="{LINK_RADIUS * 1.3:.4g}"/></geometry>{color}</visual>\n']
    if length > 1e-6:
        pitch, yaw = math.atan2(math.hypot(dx, dy), dz), math.atan2(dy, dx)  # rotate z onto the segment
        parts.append(f'    <visual><origin xyz="{_vec((dx / 2, dy / 2, dz / 2))}" rpy="0 {pitch:.6g} {yaw:.6g}"/>'
                     f'<geometry><cylinder radius="{LINK_RADIUS}" length="{length:.6g}"/></geometry>{color}</visual>\n')
    return "".join(parts)


def _visuals(link: str) -> str:
    if link == "base_link":
        return ('    <visual><origin xyz="0 0 -0.035" rpy="0 0 0"/><geometry><cylinder radius="0.05" length="0.07"/>'
                f'</geometry><material name="base_color"><color rgba="{COLORS[link]}"/></material></visual>\n')
    if link == "gripper_link":
        return (f'    <visual><origin xyz="0 0 0.03" rpy="0 0 0"/><geometry><box size="0.012 0.03 0.06"/></geometry>'
                f'<material name="jaw_color"><color rgba="{COLORS[link]}"/></material></visual>\n')
    ends = dict(zip(LINKS[1:6], [xyz for xyz, _ in JOINT_ORIGINS[1:]] + [LINK5_TO_TCP[0]]))
    return _segment(link, ends[link])


def roarm_m3_urdf(visual: bool = False) -> str:
    """The URDF text: world, base_link, link1..link5, gripper_link, hand_tcp (with shapes to draw if ``visual``)."""
    # Each moving link's centre of mass lies halfway to the next joint (in its own frame).
    next_offsets = [xyz for xyz, _ in JOINT_ORIGINS[1:]] + [LINK5_TO_TCP[0]]
    shapes = _visuals if visual else (lambda _link: "")
    parts = ['<?xml version="1.0"?>\n<robot name="roarm_m3">\n',
             '  <link name="world">\n', _inertial("world", (0.0, 0.0, 0.0), 0.02), "  </link>\n",
             '  <link name="base_link">\n', _inertial("base_link", (0.0, 0.0, -0.035), 0.07), shapes("base_link"),
             "  </link>\n"]
    for link, offset in zip(LINKS[1:6], next_offsets):
        com = tuple(0.5 * np.asarray(offset))
        parts += [f'  <link name="{link}">\n', _inertial(link, com, float(np.linalg.norm(offset))), shapes(link),
                  "  </link>\n"]
    parts += ['  <link name="gripper_link">\n', _inertial("gripper_link", (0.0, 0.0, 0.0), 0.06),
              shapes("gripper_link"), "  </link>\n",
              '  <link name="hand_tcp">\n', _inertial("hand_tcp", (0.0, 0.0, 0.0), 0.02), "  </link>\n"]
    xyz, rpy = WORLD_TO_BASE
    parts.append(f'  <joint name="world_to_base_link" type="fixed"><parent link="world"/><child link="base_link"/>'
                 f'<origin xyz="{_vec(xyz)}" rpy="{_vec(rpy)}"/></joint>\n')
    origins = list(JOINT_ORIGINS) + [GRIPPER_ORIGIN]
    parents = ("base_link", "link1", "link2", "link3", "link4", "link5")
    children = ("link1", "link2", "link3", "link4", "link5", "gripper_link")
    for i, name in enumerate(NAMES):
        (xyz, rpy), parent, child = origins[i], parents[i], children[i]
        parts.append(
            f"  <joint name={quoteattr(URDF_JOINTS[name])} type=\"revolute\"><parent link=\"{parent}\"/>"
            f'<child link="{child}"/><origin xyz="{_vec(xyz)}" rpy="{_vec(rpy)}"/><axis xyz="0 0 1"/>'
            f'<limit lower="{LOWER[i]:.6g}" upper="{UPPER[i]:.6g}" effort="{MAX_TORQUE}" '
            f'velocity="{MAX_VELOCITY[i]}"/></joint>\n')
    xyz, rpy = LINK5_TO_TCP
    parts.append(f'  <joint name="link5_to_hand_tcp" type="fixed"><parent link="link5"/><child link="hand_tcp"/>'
                 f'<origin xyz="{_vec(xyz)}" rpy="{_vec(rpy)}"/></joint>\n')
    parts.append("</robot>\n")
    return "".join(parts)
