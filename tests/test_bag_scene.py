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

from bus.envelope import Encoder, decode
from bus.topics import JOINT_STATE
from roarm.joints import NAMES
from schemas.messages_pb2 import JointState
from tests.conftest import HIL, ROOT
from tools.viz.scene import TRANSFORMS_HZ, TRANSFORMS_TOPIC, SceneDeriver, TransformBuilder, frame_transforms
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
    assert len(frames) > 100
    worst = 0.0
    for _log_time, message in frames:
        transforms = list(message.transforms)
        assert {t.child_frame_id for t in transforms} == {"base_link", "link1", "link2", "link3", "link4", "link5",
                                                          "gripper_link", "hand_tcp"}
        state = states[stamp_ns(transforms[0])]
        tcp = chain_to_world(transforms, "hand_tcp")[:3, 3]
        worst = max(worst, float(np.max(np.abs(tcp - np.asarray(state.tcp)))))
    assert worst < 1e-9  # metres: the same chain, to rounding


def test_transforms_are_drawn_once_per_slot_of_robot_time_and_at_each_reset_and_the_end(decoded: Decoded) -> None:
    """At most TRANSFORMS_HZ per second of robot time: every 1/30 s slot of robot time (per episode:
    sim_time restarts at each reset) in which the robot reported a state has exactly one transform,
    the first state of each episode is drawn, and so is the last state of the run."""
    states = [s for _t, s in decoded.by_topic["robot/joint_state"]]
    drawn = [stamp_ns(m.transforms[0]) for _t, m in decoded.by_topic["viz/transforms"]]
    assert len(drawn) == len(set(drawn))
    drawn_set = set(drawn)
    episode, last, per_slot, firsts = 0, -1.0, defaultdict(list), []
    for state in states:
        if state.sim_time < last:
            episode += 1
        if state.sim_time < last or last < 0:
            firsts.append(state.stamp_ns)
        last = state.sim_time
        per_slot[(episode, int(state.sim_time * TRANSFORMS_HZ))].append(state.stamp_ns)
    assert episode >= 1 and len(per_slot) > 50  # resets and many slots: the rule is exercised
    final_slot = (episode, int(states[-1].sim_time * TRANSFORMS_HZ))
    for slot, stamps in per_slot.items():
        shown = [s for s in stamps if s in drawn_set]
        assert shown[:1] == stamps[:1], slot  # the first state of each slot
        assert len(shown) == 1 or (slot == final_slot and shown == [stamps[0], stamps[-1]]), slot
    assert set(firsts) <= drawn_set and states[-1].stamp_ns in drawn_set
    assert len(drawn) == len(per_slot) + (states[-1].stamp_ns != per_slot[final_slot][0])
    assert len(drawn) < len(states) / 2  # the reach scenario's robot runs at 100 Hz


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


def _state_envelopes(times: list[tuple[float, int]]) -> list[Any]:
    """Real bus envelopes of JointStates with these (sim_time, host stamp ns)."""
    encoder = Encoder("sim")
    out = []
    for k, (sim_time, stamp) in enumerate(times):
        state = JointState(stamp_ns=stamp, seq=k, names=NAMES, position=[0.1 * k % 1, -0.2, 1.5, 0.3, 0.0, 0.7],
                           sim_time=sim_time)
        out.append(decode(encoder.encode_raw(JOINT_STATE, "roarm.v1.JointState", state.SerializeToString(),
                                             sent_ns=stamp), parse=False))
    return out


def _drawn(deriver: SceneDeriver, envelopes: list[Any]) -> list[int]:
    """Host stamps of the states the deriver drew transforms for, ``final`` included."""
    messages = [m for e in envelopes for m in deriver.derive(e)] + deriver.final()
    return [stamp_ns(FrameTransforms.FromString(m.data).transforms[0]) for m in messages if m.topic == TRANSFORMS_TOPIC]


def test_the_rate_bound_counts_robot_time_and_draws_resets_and_the_last_state() -> None:
    # 2 s of robot time at 100 Hz, delivered in 0.2 s of host time (lockstep, 10x faster than real time),
    # then a reset and 0.05 s more.
    times = [(k * 0.01, 1_000_000_000 + k * 1_000_000) for k in range(200)]
    times += [(k * 0.01, 1_300_000_000 + k * 1_000_000) for k in range(6)]
    drawn = _drawn(SceneDeriver(30.0), _state_envelopes(times))
    by_stamp = dict((stamp, t) for t, stamp in times)
    first_episode = [by_stamp[s] for s in drawn if s < 1_300_000_000]
    assert len(first_episode) == 60  # 2 s x 30 Hz of robot time, though only 0.2 s of host time passed
    assert [int(t * 30) for t in first_episode] == list(range(60))  # the first state of each 1/30 s slot
    # after the reset: its first state (slot 0 again), the next slot (0.04 s), and the last state
    assert drawn[60:] == [1_300_000_000, 1_304_000_000, 1_305_000_000]


def test_every_state_at_rate_zero_and_host_time_for_sources_without_robot_time() -> None:
    times = [(k * 0.01, 1_000_000_000 + k * 10_000_000) for k in range(50)]
    assert _drawn(SceneDeriver(0.0), _state_envelopes(times)) == [stamp for _t, stamp in times]
    # sim_time 0 throughout (no robot time): 1 s of host stamps at 1 kHz, slotted by the host clock
    times = [(0.0, 5_000_000_000 + k * 1_000_000) for k in range(1000)]
    drawn = _drawn(SceneDeriver(30.0), _state_envelopes(times))
    assert 30 <= len(drawn) <= 33 and drawn[-1] == times[-1][1]
    with pytest.raises(ValueError):
        SceneDeriver(-1.0)
