"""hil bag replay: a bag drives real subscribers and a real policy node;
bags of another schema replay when compatible and stop, naming the field, when not."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from mcap.writer import Writer
from mcap_protobuf.schema import build_file_descriptor_set

from tests.bag_factory import synthetic_bag
from bus.pubsub import Subscriber
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE, QueuePolicy
from tests.conftest import HIL
from schemas import messages_pb2
from tools.bag.compat import CompatReport, compare_type
from tools.bag.info import bag_info


def collect(sub: Subscriber, proc: subprocess.Popen, timeout_s: float = 60.0) -> list:
    """Everything the subscriber gets until half a second after the replay process exited."""
    got = []
    deadline = time.monotonic() + timeout_s
    exited = None
    while time.monotonic() < deadline and (exited is None or time.monotonic() - exited < 0.5):
        env = sub.recv(timeout_ms=100)
        if env is not None:
            got.append(env)
        if exited is None and proc.poll() is not None:
            exited = time.monotonic()
    return got


def test_replay_max_delivers_every_message_with_its_sender_and_seq(procs, zctx, endpoints, run_dir, tmp_path):
    bag = synthetic_bag(tmp_path / "run.mcap", steps=300)
    sub = Subscriber(zctx, [endpoints["robot"].pub, endpoints["runner"].pub], [JOINT_STATE, GOAL],
                     policy=QueuePolicy.QUEUE)
    proc = procs.hil("bag", "replay", str(bag), "--max", "--wait-subscribers", "1", "--settle", "0.3",
                     "--run-dir", str(run_dir))
    got = collect(sub, proc)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    states = [e for e in got if e.topic == JOINT_STATE]
    goals = [e for e in got if e.topic == GOAL]
    assert [e.seq for e in states] == list(range(300)) and {e.src for e in states} == {"sim"}
    assert [e.message.id for e in goals] == ["g0", "g1", "g2", "g3", "g4", "g5"]
    assert states[17].message.seq == 17 and len(states[17].message.position) == 6
    assert b"replayed 306 messages as robot+runner" in out


def test_replay_keeps_the_recorded_timing(procs, run_dir, tmp_path):
    bag = synthetic_bag(tmp_path / "run.mcap", steps=300)
    duration = bag_info(bag).duration_s
    result = subprocess.run([HIL, "bag", "replay", str(bag), "--rate", "2", "--settle", "0", "--run-dir",
                             str(run_dir)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    elapsed = float(re.search(r"in ([0-9.]+) s", result.stdout).group(1))
    assert elapsed >= 0.95 * duration / 2  # never faster than the recorded timing allows


def test_sigint_stops_a_replay_cleanly(procs, zctx, endpoints, run_dir, tmp_path):
    import signal

    from tests.conftest import wait_ready

    bag = synthetic_bag(tmp_path / "run.mcap", steps=1000, period_ns=10_000_000)  # 10 s of recorded time
    replay = procs.hil("bag", "replay", str(bag), "--settle", "0", "--run-dir", str(run_dir))
    wait_ready(zctx, endpoints, "robot")
    time.sleep(0.5)
    replay.send_signal(signal.SIGINT)
    out, err = replay.communicate(timeout=30)
    assert replay.returncode == 0, err.decode()
    assert b"stopped: signal SIGINT" in out and b"Traceback" not in err


@pytest.mark.slow
def test_a_policy_node_is_driven_by_a_bag(procs, zctx, endpoints, run_dir, tmp_path):
    bag = synthetic_bag(tmp_path / "run.mcap", steps=150, provenance={"dt": "0.01", "schema_version": "1.0"},
                        period_ns=10_000_000)
    policy = procs.hil("node", "policy", "--scripted", "ik", "--run-dir", str(run_dir))
    commands = Subscriber(zctx, [endpoints["policy"].pub], [JOINT_COMMAND], policy=QueuePolicy.QUEUE)
    replay = procs.hil("bag", "replay", str(bag), "--rate", "1", "--wait-subscribers", "1", "--wait-timeout", "60",
                       "--run-dir", str(run_dir))
    got = collect(commands, replay, timeout_s=120)
    _, err = replay.communicate(timeout=30)
    assert replay.returncode == 0, err.decode()
    answered = {e.message.obs_seq for e in got if not e.message.hold}
    # The policy answers the newest state it has; on a busy machine it may skip some.
    assert len(answered) >= 30, f"policy answered {len(answered)} of 150 replayed states"
    assert answered <= set(range(150)) and max(answered) >= 140, "it followed the bag to its end"
    assert policy.poll() is None, "the policy node keeps running after the replay ends"


# -- schema compatibility -------------------------------------------------------------------------------------

def modified_joint_state(change) -> bytes:
    """The current JointState FileDescriptorSet with ``change`` applied to its DescriptorProto."""
    fds = build_file_descriptor_set(messages_pb2.JointState)
    for file in fds.file:
        for message in file.message_type:
            if message.name == "JointState":
                change(message)
    return fds.SerializeToString()


def write_bag(path: Path, schema_name: str, schema_data: bytes, payloads: list[bytes], version: str = "1.0") -> Path:
    with open(path, "wb") as handle:
        writer = Writer(handle)
        writer.start()
        writer.add_metadata("roarm-hil", {"schema_version": version, "dt": "0.02"})
        schema_id = writer.register_schema(schema_name, "protobuf", schema_data)
        channel_id = writer.register_channel(JOINT_STATE, "protobuf", schema_id,
                                             {"role": "robot", "src": "sim", "schema_version": version})
        for i, payload in enumerate(payloads):
            writer.add_message(channel_id, log_time=1_000_000 * (i + 1), data=payload,
                               publish_time=1_000_000 * (i + 1), sequence=i)
        writer.finish()
    return path


def states(n: int = 20) -> list[bytes]:
    return [messages_pb2.JointState(seq=k, position=[0.1 * k] * 6, sim_time=0.02 * k).SerializeToString()
            for k in range(n)]


def set_type(name: str, kind: int):
    def change(message: descriptor_pb2.DescriptorProto) -> None:
        for f in message.field:
            if f.name == name:
                f.type = kind
    return change


def replay_cli(bag: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, "bag", "replay", str(bag), "--max", "--settle", "0", "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=60)


def test_field_type_change_stops_replay_naming_message_and_field(run_dir, tmp_path):
    data = modified_joint_state(set_type("position", descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT))
    bag = write_bag(tmp_path / "old.mcap", "roarm.v1.JointState", data, states())
    result = replay_cli(bag, run_dir)
    assert result.returncode == 1
    assert "message roarm.v1.JointState field 4 'position': repeated float in the bag, repeated double now" \
        in result.stderr
    assert "Traceback" not in result.stderr
    check = subprocess.run([HIL, "bag", "check-policy", str(bag), "--model", "scripted:ik"], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 1 and "field 4 'position': repeated float in the bag" in check.stderr


def test_a_message_that_is_gone_stops_replay(run_dir, tmp_path):
    def rename(message: descriptor_pb2.DescriptorProto) -> None:
        message.name = "OldJointState"
    bag = write_bag(tmp_path / "gone.mcap", "roarm.v1.OldJointState", modified_joint_state(rename), states())
    result = replay_cli(bag, run_dir)
    assert result.returncode == 1 and "message roarm.v1.OldJointState" in result.stderr
    assert "no longer exists" in result.stderr


def test_another_major_version_stops_replay(run_dir, tmp_path):
    data = build_file_descriptor_set(messages_pb2.JointState).SerializeToString()
    bag = write_bag(tmp_path / "v2.mcap", "roarm.v1.JointState", data, states(), version="2.0")
    result = replay_cli(bag, run_dir)
    assert result.returncode == 1 and "schema 2.0" in result.stderr and "major version" in result.stderr


def test_compatible_changes_replay_with_notes(run_dir, tmp_path):
    def older(message: descriptor_pb2.DescriptorProto) -> None:
        # An older JointState: no tcp field yet, and a field 20 since removed.
        keep = [f for f in message.field if f.name != "tcp"]
        del message.field[:]
        message.field.extend(keep)
        message.field.add(name="legacy", number=20, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                          label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="legacy")
    bag = write_bag(tmp_path / "older.mcap", "roarm.v1.JointState", modified_joint_state(older), states())
    result = replay_cli(bag, run_dir)
    assert result.returncode == 0, result.stderr
    assert "replayed 20 messages" in result.stdout
    assert "field 10 'tcp' is new" in result.stderr and "field 20 'legacy' was removed (not reserved)" in result.stderr


def test_label_change_is_incompatible():
    def singular(message: descriptor_pb2.DescriptorProto) -> None:
        for f in message.field:
            if f.name == "names":
                f.label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    report = CompatReport()
    compare_type("roarm.v1.JointState",
                 descriptor_pb2.FileDescriptorSet.FromString(modified_joint_state(singular)), report)
    assert report.problems == [
        "message roarm.v1.JointState field 3 'names': singular string in the bag, repeated string now"]



def test_replay_answers_info_as_the_recorded_robot(procs, zctx, endpoints, run_dir, tmp_path):
    from tests.bag_factory import Clock, envelope
    from tests.conftest import wait_ready
    from bus.envelope import Encoder
    from schemas import services_pb2
    from tools.bag.node_info import PREFIX, as_metadata
    from tools.bag.writer import BagWriter

    bag = BagWriter(tmp_path / "run.mcap", {"schema_version": "1.0"})
    recorded = services_pb2.NodeInfo(node="sim", role="robot", backend="mujoco", dt=0.004, mode="lockstep",
                                     joint_names=["base", "shoulder", "elbow", "wrist", "roll", "gripper"],
                                     lower=[-1.0] * 6, upper=[1.0] * 6, model_hash="ab12")
    bag.add_metadata(PREFIX + "robot", as_metadata(recorded))
    bag.write("robot", envelope(Encoder("sim"), JOINT_STATE, messages_pb2.JointState(seq=0), Clock()))
    bag.close()
    replay = procs.hil("bag", "replay", str(tmp_path / "run.mcap"), "--settle", "20", "--run-dir", str(run_dir))
    client = wait_ready(zctx, endpoints, "robot")
    info = client.info()
    assert info.backend == "replay" and info.mode == "replay" and info.dt == pytest.approx(0.004)
    assert list(info.lower) == [-1.0] * 6 and info.model_hash == "ab12"
    assert info.extra["recorded_backend"] == "mujoco"
    client.shutdown("test")
    _, err = replay.communicate(timeout=30)
    assert replay.returncode == 0, err.decode()
