"""Bags that show the arm: a real recorded run read back with an independent
MCAP reader (the ``mcap`` package's reader and plain protobuf classes built
from the schemas stored in the bag, not the recorder's own code), checking
that the link transforms reproduce the TCP the robot reported, that the URDF
is there, and that goals and events became scene spheres and logs.
"""

from __future__ import annotations

import math
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from mcap.reader import make_reader

from tests.conftest import HIL, ROOT
from tools.viz.scene import TransformBuilder, frame_transforms
from foxglove_schemas_protobuf.FrameTransforms_pb2 import FrameTransforms


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scene") / "out"
    result = subprocess.run([HIL, "run", str(ROOT / "scenarios" / "reach.yaml"), "--target", "mock", "--out", str(out),
                             "--no-progress"], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "run.mcap"


class Decoded:
    """Every message of the bag by topic, decoded with classes made from the bag's own schemas."""

    def __init__(self, path: Path) -> None:
        self.by_topic: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        self.attachments: dict[str, bytes] = {}
        self.encodings: dict[str, str] = {}
        classes: dict[int, Any] = {}
        with open(path, "rb") as handle:
            reader = make_reader(handle)
            for schema, channel, message in reader.iter_messages():
                self.encodings[channel.topic] = channel.message_encoding
                if schema.id not in classes:
                    pool = descriptor_pool.DescriptorPool()
                    for file in descriptor_pb2.FileDescriptorSet.FromString(schema.data).file:
                        pool.Add(file)
                    classes[schema.id] = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))
                self.by_topic[channel.topic].append((message.log_time, classes[schema.id].FromString(message.data)))
            handle.seek(0)
            for attachment in make_reader(handle).iter_attachments():
                self.attachments[attachment.name] = attachment.data


@pytest.fixture(scope="module")
def decoded(bag: Path) -> Decoded:
    return Decoded(bag)


def matrix(translation: Any, rotation: Any) -> np.ndarray:
    """4x4 from a translation and a unit quaternion (x, y, z, w)."""
    x, y, z, w = rotation.x, rotation.y, rotation.z, rotation.w
    out = np.eye(4)
    out[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                   [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                   [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    out[:3, 3] = [translation.x, translation.y, translation.z]
    return out


def chain_to_world(transforms: list[Any], frame: str) -> np.ndarray:
    parents = {t.child_frame_id: t for t in transforms}
    pose = np.eye(4)
    while frame != "world":
        t = parents[frame]
        pose = matrix(t.translation, t.rotation) @ pose
        frame = t.parent_frame_id
    return pose


def stamp_ns(t: Any) -> int:
    return t.timestamp.seconds * 1_000_000_000 + t.timestamp.nanos


def test_link_transforms_reproduce_the_tcp_the_robot_reported(decoded: Decoded) -> None:
    states = {int(s.stamp_ns): s for _t, s in decoded.by_topic["robot/joint_state"]}
    frames = decoded.by_topic["viz/transforms"]
    assert len(frames) == len(decoded.by_topic["robot/joint_state"]) > 400  # one per measured state
    worst = 0.0
    for _log_time, message in frames:
        transforms = list(message.transforms)
        assert {t.child_frame_id for t in transforms} == {"base_link", "link1", "link2", "link3", "link4", "link5",
                                                          "gripper_link", "hand_tcp"}
        state = states[stamp_ns(transforms[0])]
        tcp = chain_to_world(transforms, "hand_tcp")[:3, 3]
        worst = max(worst, float(np.max(np.abs(tcp - np.asarray(state.tcp)))))
    assert worst < 1e-9  # metres: the same chain, to rounding


def test_the_bag_carries_the_urdf_that_matches_the_transforms(decoded: Decoded) -> None:
    urdf = decoded.attachments["roarm_m3.urdf"].decode()
    assert set(decoded.encodings.values()) == {"protobuf"}  # every channel: readers need one decoder
    [(_t, description)] = decoded.by_topic["/robot_description"]
    assert description.data == urdf
    robot = ET.fromstring(urdf)
    joints = {(j.find("parent").get("link"), j.find("child").get("link")) for j in robot.iter("joint")}  # type: ignore[union-attr]
    _log, first = decoded.by_topic["viz/transforms"][0]
    assert {(t.parent_frame_id, t.child_frame_id) for t in first.transforms} == joints
    assert len(list(robot.iter("visual"))) >= 7  # shapes to draw, not only frames


def test_goals_are_spheres_and_events_are_logs(decoded: Decoded) -> None:
    scenario = yaml.safe_load((ROOT / "scenarios" / "reach.yaml").read_text())
    updates = [m for _t, m in decoded.by_topic["viz/goal"]]
    assert len(updates) == len(scenario["goals"]) == 4  # one per goal, though the runner re-sent each
    for update, goal in zip(updates, scenario["goals"]):
        [entity] = update.entities
        assert entity.frame_id == "world" and entity.texts[0].text == f"goal {goal['id']}"
        sphere = entity.spheres[0]
        centre = [sphere.pose.position.x, sphere.pose.position.y, sphere.pose.position.z]
        assert centre == pytest.approx(goal["tcp"])
        assert sphere.size.x == pytest.approx(2 * goal["tolerance_mm"] / 1000)
    events = [m for _t, m in decoded.by_topic["node/event"]]
    logs = [m for _t, m in decoded.by_topic["viz/log"]]
    assert len(logs) == len(events) > 0
    for event, log in zip(events, logs):
        assert log.name == event.node and log.message.startswith(event.code)
        assert log.level == event.severity  # roarm.v1.Severity and foxglove.Log.Level: DEBUG 1 .. ERROR 4


def test_the_fast_encoder_writes_what_the_schema_classes_write() -> None:
    rng = np.random.default_rng(4)
    builder = TransformBuilder()
    for _ in range(20):
        q = list(rng.uniform(-math.pi, math.pi, 6))
        stamp = int(rng.integers(0, 2**62))
        assert FrameTransforms.FromString(builder.encode(q, stamp)) == frame_transforms(q, stamp)


def test_replay_and_export_still_work_on_a_bag_with_scene_channels(bag: Path, tmp_path: Path) -> None:
    result = subprocess.run([HIL, "bag", "export", str(bag), "--csv", str(tmp_path / "csv")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "csv" / "_robot_description.csv").read_text().count("<robot ") == 1
    assert (tmp_path / "csv" / "viz_transforms.csv").stat().st_size > 1000
