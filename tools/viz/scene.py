"""What Foxglove needs to draw the arm, made from the bus messages.

- ``foxglove.FrameTransforms`` on ``viz/transforms``: one transform per URDF
  joint (world -> base_link -> link1 ... link5 -> gripper_link, link5 ->
  hand_tcp) from the *measured* joints of ``robot/joint_state``: the
  joint's fixed origin times its rotation about z, the same chain as
  ``roarm.kinematics`` (so the frames end exactly at the TCP the robot
  reported). At most ``TRANSFORMS_HZ`` (30) per second of robot time, the
  first state after each reset and the last state always
  (``SceneDeriver``).
- the URDF with visual shapes (``sim_node.urdf``) on ``/robot_description``
  as a one-field protobuf message ``{string data = 1}`` (the topic and field
  Foxglove's 3D panel loads a robot description from; protobuf like every
  other channel, so readers with only a protobuf decoder still read the
  whole bag); the recorder also attaches it to the bag as a file.
- ``foxglove.SceneUpdate`` on ``viz/goal``: a sphere the size of the
  tolerance at each Cartesian goal (and at the FK of a full joint goal), with
  its id as a label; one update per goal, not per re-send.
- ``foxglove.Log`` on ``viz/log``: every ``node/event``.

Schemas come from the ``foxglove-schemas-protobuf`` package; each derived
message carries the stamps of the bus message it came from, so it lines up
with the recorded streams.
"""

from __future__ import annotations

import math
import struct
from typing import NamedTuple

from foxglove_schemas_protobuf.Color_pb2 import Color
from foxglove_schemas_protobuf.FrameTransform_pb2 import FrameTransform
from foxglove_schemas_protobuf.FrameTransforms_pb2 import FrameTransforms
from foxglove_schemas_protobuf.Log_pb2 import Log
from foxglove_schemas_protobuf.Pose_pb2 import Pose
from foxglove_schemas_protobuf.Quaternion_pb2 import Quaternion
from foxglove_schemas_protobuf.SceneEntity_pb2 import SceneEntity
from foxglove_schemas_protobuf.SceneUpdate_pb2 import SceneUpdate
from foxglove_schemas_protobuf.SpherePrimitive_pb2 import SpherePrimitive
from foxglove_schemas_protobuf.TextPrimitive_pb2 import TextPrimitive
from foxglove_schemas_protobuf.Vector3_pb2 import Vector3
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError, Message
from mcap_protobuf.schema import build_file_descriptor_set

from bus.envelope import Envelope
from bus.topics import EVENT, GOAL, JOINT_STATE
from bus.wire import stamp, varint
from roarm.joints import NAMES
from roarm.kinematics import JOINT_ORIGINS, LINK5_TO_TCP, WORLD_TO_BASE, fk
from schemas import messages_pb2
from sim_node.urdf import GRIPPER_ORIGIN, roarm_m3_urdf

TRANSFORMS_TOPIC = "viz/transforms"
GOAL_TOPIC = "viz/goal"
LOG_TOPIC = "viz/log"
URDF_TOPIC = "/robot_description"
URDF_SCHEMA = "roarm_hil.viz.RobotDescription"
URDF_ATTACHMENT = "roarm_m3.urdf"
WORLD = "world"
TCP_FRAME = "hand_tcp"
# Link transforms per second of robot time, at most (SceneDeriver): what a viewer needs.
TRANSFORMS_HZ = 30.0

Xyz = tuple[float, float, float]
# (parent, child, origin xyz, origin rpy, index of the joint turning it about z, or None when fixed).
EDGES: tuple[tuple[str, str, Xyz, Xyz, int | None], ...] = (
    (WORLD, "base_link", *WORLD_TO_BASE, None),
    ("base_link", "link1", *JOINT_ORIGINS[0], 0),
    ("link1", "link2", *JOINT_ORIGINS[1], 1),
    ("link2", "link3", *JOINT_ORIGINS[2], 2),
    ("link3", "link4", *JOINT_ORIGINS[3], 3),
    ("link4", "link5", *JOINT_ORIGINS[4], 4),
    ("link5", "gripper_link", *GRIPPER_ORIGIN, 5),
    ("link5", TCP_FRAME, *LINK5_TO_TCP, None),
)
TOPICS = {"foxglove.FrameTransforms": TRANSFORMS_TOPIC, "foxglove.SceneUpdate": GOAL_TOPIC, "foxglove.Log": LOG_TOPIC}
LEVELS = {messages_pb2.DEBUG: Log.DEBUG, messages_pb2.INFO: Log.INFO, messages_pb2.WARNING: Log.WARNING,
          messages_pb2.ERROR: Log.ERROR, messages_pb2.CRITICAL: Log.FATAL}


class VizMessage(NamedTuple):
    """One derived message, ready for a bag channel or a live channel (a named tuple: the
    recorder makes one per drawn state, and a frozen dataclass costs several times more to make)."""

    topic: str
    schema: str  # foxglove.FrameTransforms, ... or URDF_SCHEMA
    encoding: str  # "protobuf" (every derived channel, so one decoder reads the whole bag)
    data: bytes
    log_time_ns: int
    publish_time_ns: int


def _description_file() -> descriptor_pb2.FileDescriptorProto:
    """``package roarm_hil.viz; message RobotDescription { string data = 1; }``"""
    file = descriptor_pb2.FileDescriptorProto(name="roarm_hil/viz/robot_description.proto",
                                              package="roarm_hil.viz", syntax="proto3")
    message = file.message_type.add(name="RobotDescription")
    message.field.add(name="data", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    return file


def schema_bytes(schema: str) -> tuple[str, bytes]:
    """(schema encoding, FileDescriptorSet) for a derived channel."""
    if schema == URDF_SCHEMA:
        return "protobuf", descriptor_pb2.FileDescriptorSet(file=[_description_file()]).SerializeToString()
    cls = {"foxglove.FrameTransforms": FrameTransforms, "foxglove.SceneUpdate": SceneUpdate, "foxglove.Log": Log}[schema]
    return "protobuf", build_file_descriptor_set(cls).SerializeToString()


def _quat_mul(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
              ) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (aw * bx + ax * bw + ay * bz - az * by, aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw, aw * bw - ax * bx - ay * by - az * bz)


def _rpy_quat(rpy: Xyz) -> tuple[float, float, float, float]:
    """URDF rpy (Rz(yaw) Ry(pitch) Rx(roll)) as a quaternion (x, y, z, w)."""
    r, p, y = (0.5 * v for v in rpy)
    qx, qy, qz = (math.sin(r), 0.0, 0.0, math.cos(r)), (0.0, math.sin(p), 0.0, math.cos(p)), (
        0.0, 0.0, math.sin(y), math.cos(y))
    return _quat_mul(_quat_mul(qz, qy), qx)


_ORIGIN_QUATS = tuple(_rpy_quat(rpy) for _p, _c, _xyz, rpy, _j in EDGES)


def _field(tag: int, body: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return bytes((tag,)) + varint(len(body)) + body


_QUATERNION = struct.Struct("<BdBdBdBd")  # foxglove.Quaternion: x=1, y=2, z=3, w=4 (doubles)
_VECTOR3 = struct.Struct("<BdBdBd")
# (packer, its arguments with the constants in, (argument index, joint, origin quaternion) of each turning joint)
_Packer = tuple[struct.Struct, list[object], list[tuple[int, int, tuple[float, float, float, float]]]]


class TransformBuilder:
    """``foxglove.FrameTransforms`` bytes for joint positions in bus order.

    The recorder does this for every state it draws, so the message is
    written in protobuf's wire format directly, with one ``struct.pack`` for
    the message and one per turning joint's rotation: the frame names, translations and fixed rotations are constant bytes,
    only the stamp (the same in every transform) and the moving joints'
    rotations change. The layout depends on the stamp's length alone, so
    one packer per stamp length is built once and kept. Building nested
    protobuf objects instead costs ~10x more (measured: ~200 us a state);
    joining per-field pieces in Python cost 26 us (issue 18's profile).
    ``frame_transforms`` builds the same message with the package's classes;
    a test checks both agree and that an independent reader decodes them.
    """

    def __init__(self) -> None:
        # Per edge: the bytes after the stamp up to the rotation's doubles, which joint turns it (None:
        # fixed), and for a fixed edge its whole rotation field.
        self._edges: list[tuple[bytes, int | None, tuple[float, float, float, float]]] = []
        for (parent, child, xyz, _rpy, joint), origin in zip(EDGES, _ORIGIN_QUATS):
            head = _field(0x12, parent.encode()) + _field(0x1A, child.encode()) + _field(
                0x22, _VECTOR3.pack(0x09, xyz[0], 0x11, xyz[1], 0x19, xyz[2]))
            self._edges.append((head + b"\x2a" + bytes((_QUATERNION.size,)), joint, origin))
        self._packers: dict[int, _Packer] = {}

    def _packer(self, stamp_size: int) -> _Packer:
        """(packer, its argument list with the constants filled, (argument index, joint, origin) of each
        moving rotation) for stamps of ``stamp_size`` bytes; the stamp goes in at argument 1 + 4 k."""
        fmt, args, moving = ["<"], [], []
        for head, joint, origin in self._edges:
            body_size = stamp_size + len(head) + _QUATERNION.size
            prefix = b"\x0a" + varint(body_size)
            fmt.append(f"{len(prefix)}s{stamp_size}s{len(head)}s{_QUATERNION.size}s")
            args += [prefix, b"", head, b""]
            if joint is None:
                args[-1] = _QUATERNION.pack(0x09, origin[0], 0x11, origin[1], 0x19, origin[2], 0x21, origin[3])
            else:
                moving.append((len(args) - 1, joint, origin))
        packer = struct.Struct("".join(fmt))
        self._packers[stamp_size] = (packer, args, moving)
        return packer, args, moving

    def encode(self, position: list[float], stamp_ns: int) -> bytes:
        seconds, nanos = divmod(stamp_ns, 1_000_000_000)
        field = _field(0x0A, b"\x08" + varint(seconds) + b"\x10" + varint(nanos))
        packer, args, moving = self._packers.get(len(field)) or self._packer(len(field))
        args = args.copy()
        args[1::4] = [field] * len(self._edges)
        pack = _QUATERNION.pack
        sin, cos = math.sin, math.cos
        for at, joint, (ax, ay, az, aw) in moving:
            half = 0.5 * position[joint]
            s, c = sin(half), cos(half)
            # origin * (0, 0, sin, cos): _quat_mul with the zero terms left out
            args[at] = pack(0x09, ax * c + ay * s, 0x11, ay * c - ax * s, 0x19, aw * s + az * c, 0x21, aw * c - az * s)
        return packer.pack(*args)


def frame_transforms(position: list[float], stamp_ns: int) -> FrameTransforms:
    """The same message built with the schema package's classes (live view, tests)."""
    timestamp = stamp(stamp_ns)
    out = FrameTransforms()
    for (parent, child, xyz, _rpy, joint), origin in zip(EDGES, _ORIGIN_QUATS):
        rotation = origin
        if joint is not None:
            half = 0.5 * position[joint]
            rotation = _quat_mul(origin, (0.0, 0.0, math.sin(half), math.cos(half)))
        out.transforms.append(FrameTransform(
            timestamp=timestamp, parent_frame_id=parent, child_frame_id=child,
            translation=Vector3(x=xyz[0], y=xyz[1], z=xyz[2]),
            rotation=Quaternion(x=rotation[0], y=rotation[1], z=rotation[2], w=rotation[3])))
    return out


_NAMES = list(NAMES)  # a repeated field compares equal to a list (not to a tuple), without a copy


def _canonical(state: messages_pb2.JointState) -> list[float] | None:
    """Positions in bus order; None when the state cannot say (wrong count, unknown names)."""
    if not state.names or state.names == _NAMES:
        position = state.position[:]  # a list
        return position if len(position) == len(NAMES) else None
    index = {name: i for i, name in enumerate(state.names)}
    if set(index) != set(NAMES) or len(state.position) != len(state.names):
        return None
    return [state.position[index[name]] for name in NAMES]


def goal_scene(goal: messages_pb2.Goal, stamp_ns: int) -> SceneUpdate:
    """The goal as a sphere of its tolerance (Cartesian goals, full joint goals); a label always."""
    target = goal.WhichOneof("target")
    centre: Xyz | None = None
    radius = 0.01
    if target == "tcp":
        centre, radius = (goal.tcp.x, goal.tcp.y, goal.tcp.z), max(goal.tolerance, 0.002)
    elif target == "joints" and len(goal.joints.position) == len(NAMES) and not goal.joints.names:
        x, y, z = fk(list(goal.joints.position))
        centre = (float(x), float(y), float(z))
    entity = SceneEntity(timestamp=stamp(stamp_ns), frame_id=WORLD, id="goal", frame_locked=False)
    pose = Pose(position=Vector3(x=centre[0], y=centre[1], z=centre[2]) if centre else Vector3(),
                orientation=Quaternion(w=1.0))
    if centre is not None:
        entity.spheres.append(SpherePrimitive(pose=pose, size=Vector3(x=2 * radius, y=2 * radius, z=2 * radius),
                                              color=Color(r=0.1, g=0.75, b=0.3, a=0.35)))
        entity.spheres.append(SpherePrimitive(pose=pose, size=Vector3(x=0.006, y=0.006, z=0.006),
                                              color=Color(r=0.1, g=0.6, b=0.2, a=1.0)))
    label = Pose(position=Vector3(x=pose.position.x, y=pose.position.y, z=pose.position.z + radius + 0.02),
                 orientation=Quaternion(w=1.0))
    entity.texts.append(TextPrimitive(pose=label, billboard=True, font_size=14, scale_invariant=True,
                                      color=Color(r=1, g=1, b=1, a=1), text=f"goal {goal.id}"))
    return SceneUpdate(entities=[entity])


def event_log(event: messages_pb2.Event) -> Log:
    return Log(timestamp=stamp(event.stamp_ns), level=LEVELS.get(event.severity, Log.UNKNOWN),
               message=f"{event.code}: {event.text}" if event.text else event.code, name=event.node)


def urdf_message() -> bytes:
    """A RobotDescription with the URDF (wire format: field 1, length-delimited UTF-8)."""
    return _field(0x0A, roarm_m3_urdf(visual=True).encode())


class SceneDeriver:
    """Turns bus envelopes into the derived messages; remembers the active goal so
    a goal re-sent every 0.25 s becomes one scene update.

    Link transforms are drawn at most ``transforms_hz`` times per second of
    robot time (``JointState.sim_time``: simulated time, or the real arm's
    time since reset): the first state of each 1/``transforms_hz`` slot of
    robot time, and always the first state after a reset (robot time went
    back). A viewer needs no more (Foxglove interpolates between
    transforms), and drawing every state of a 100 Hz simulation was most of
    what recording cost (issue 18). A source without robot time (sim_time
    0 in state after state) is slotted by its host stamps instead. ``final`` draws the last state
    when it fell between slots, so a bag ends on the pose the robot last
    reported. ``transforms_hz`` 0: every state.
    """

    def __init__(self, transforms_hz: float = TRANSFORMS_HZ) -> None:
        if transforms_hz < 0 or not math.isfinite(transforms_hz):
            raise ValueError(f"transforms_hz must be a finite number >= 0, got {transforms_hz}")
        self.goal_id: str | None = None
        self.urdf_sent = False
        self.transforms = TransformBuilder()
        self.transforms_hz = transforms_hz
        self._slot: int | None = None  # of the last state drawn
        self._held: Envelope | None = None  # the last state not drawn, for ``final``
        self._robot_time = -1.0  # of the last state (-1: none yet)
        # The topics anything is drawn from: a caller may skip ``derive`` for the rest (the URDF then
        # comes with the first of these instead of the first message of any topic).
        self.derives = frozenset((JOINT_STATE, GOAL, EVENT))

    def derive(self, envelope: Envelope) -> list[VizMessage]:
        out = []
        if not self.urdf_sent:
            self.urdf_sent = True
            out.append(VizMessage(URDF_TOPIC, URDF_SCHEMA, "protobuf", urdf_message(), envelope.recv_ns,
                                  envelope.sent_ns))
        try:
            found = self._derived(envelope)
        except DecodeError:
            return out  # the bus already counts payloads that do not parse; nothing to draw
        if found is not None:
            schema, data = found
            out.append(VizMessage(TOPICS[schema], schema, "protobuf", data, envelope.recv_ns, envelope.sent_ns))
        return out

    def final(self) -> list[VizMessage]:
        """The transforms of the last state seen when the rate bound skipped it (else nothing)."""
        held, self._held = self._held, None
        if held is None:
            return []
        state = messages_pb2.JointState.FromString(held.payload)
        data = self._transforms(state, held)
        return [] if data is None else [VizMessage(TRANSFORMS_TOPIC, "foxglove.FrameTransforms", "protobuf", data,
                                                   held.recv_ns, held.sent_ns)]

    def _derived(self, envelope: Envelope) -> tuple[str, bytes] | None:
        if envelope.topic == JOINT_STATE:
            state = messages_pb2.JointState.FromString(envelope.payload)
            hz = self.transforms_hz
            if hz:
                robot_time, last = state.sim_time, self._robot_time
                self._robot_time = robot_time
                if (robot_time > 0 or last < 0 or robot_time < last) and math.isfinite(robot_time):
                    slot = int(robot_time * hz)
                else:  # a source without robot time (sim_time stays 0): slots of the host's clock, negative
                    slot = -1 - int((state.stamp_ns or envelope.sent_ns) * hz // 1e9)
                if slot == self._slot and not robot_time < last:  # robot time going back: a reset, drawn
                    self._held = envelope
                    return None
                self._slot = slot
            self._held = None
            data = self._transforms(state, envelope)
            return None if data is None else ("foxglove.FrameTransforms", data)
        message = self._other(envelope)
        return None if message is None else (message.DESCRIPTOR.full_name, message.SerializeToString())

    def _transforms(self, state: messages_pb2.JointState, envelope: Envelope) -> bytes | None:
        position = _canonical(state)
        if position is None or not all(map(math.isfinite, position)):
            return None
        return self.transforms.encode(position, state.stamp_ns or envelope.sent_ns)

    def _other(self, envelope: Envelope) -> Message | None:
        if envelope.topic == GOAL:
            goal = messages_pb2.Goal.FromString(envelope.payload)
            if goal.id == self.goal_id:
                return None
            self.goal_id = goal.id
            return goal_scene(goal, goal.stamp_ns or envelope.sent_ns)
        if envelope.topic == EVENT:
            return event_log(messages_pb2.Event.FromString(envelope.payload))
        return None
