"""The recorder as a real process against a real publisher: bags that decode
from their embedded schemas alone, clean stops, SIGKILL survival, clear errors."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from mcap.exceptions import EndOfFile
from mcap.reader import make_reader
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader

from schemas import SCHEMA_VERSION
from tests.conftest import HIL, ROOT, wait_ready

TALKER = str(ROOT / "tests" / "nodes" / "bag_talker.py")


def classes_from_schema(data: bytes) -> dict[str, type]:
    """Message classes built only from a bag's FileDescriptorSet (no schemas/ import)."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    classes = {}
    for file in fds.file:
        for name in file.message_type:
            full = f"{file.package}.{name.name}"
            classes[full] = message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
    return classes


def received(client, minimum: int, timeout_s: float = 30.0) -> int:
    """Poll the recorder's info until it has stored ``minimum`` messages."""
    deadline = time.monotonic() + timeout_s
    while True:
        count = int(client.info().metrics["received"])
        if count >= minimum or time.monotonic() > deadline:
            return count
        time.sleep(0.1)


def start_recording(procs, zctx, endpoints, run_dir: Path, *extra: str):
    procs.python(TALKER, str(run_dir), "200", "10")
    recorder = procs.hil("bag", "record", "-o", str(run_dir / "run.mcap"), "--run-dir", str(run_dir),
                         "--meta", "scenario=reach", "--meta", "seed=7", *extra)
    client = wait_ready(zctx, endpoints, "recorder")
    assert received(client, 700) >= 700
    return recorder, client


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["shutdown", "sigint", "sigterm"])
def test_recorded_bag_decodes_from_embedded_schemas(procs, zctx, endpoints, run_dir, stop):
    recorder, client = start_recording(procs, zctx, endpoints, run_dir)
    if stop == "shutdown":
        client.shutdown("test")
    else:
        recorder.send_signal(signal.SIGINT if stop == "sigint" else signal.SIGTERM)
    _, err = recorder.communicate(timeout=20)
    assert recorder.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert b"dropped" in err  # the end-of-recording report

    with open(run_dir / "run.mcap", "rb") as handle:
        reader = make_reader(handle)
        summary = reader.get_summary()
        assert summary is not None, "a cleanly stopped recorder writes the summary section"
        metadata = {m.name: m.metadata for m in reader.iter_metadata()}
        decoded: dict[str, int] = {}
        classes = {sid: classes_from_schema(s.data) for sid, s in summary.schemas.items()}
        for schema, channel, message in reader.iter_messages():
            assert schema.encoding == "protobuf" and channel.message_encoding == "protobuf"
            msg = classes[schema.id][schema.name].FromString(message.data)
            decoded[channel.topic] = decoded.get(channel.topic, 0) + 1
            if channel.topic == "robot/joint_state":
                assert len(msg.position) == 6 and len(msg.tcp) == 3
                assert message.publish_time > 0 and message.log_time >= message.publish_time
                assert channel.metadata["src"] == "talker-robot" and channel.metadata["role"] == "robot"
            if channel.topic == "robot/joint_command":
                assert msg.obs_seq == msg.seq
    assert {"robot/joint_state", "robot/joint_command", "task/goal", "node/heartbeat", "viz/transforms",
            "/robot_description"} <= set(decoded)
    assert decoded["robot/joint_state"] >= 300
    assert metadata["roarm-hil.node.robot"]["node"] == "talker-robot"  # the recorder asked the robot's info
    prov = metadata["roarm-hil"]
    assert prov["scenario"] == "reach" and prov["seed"] == "7"
    assert prov["schema_version"] == SCHEMA_VERSION and prov["git_commit"]
    # The talker skips one joint_state seq in ten: the recorder counted them.
    streams = metadata["roarm-hil.streams"]
    assert '"dropped": 0' not in streams["robot/joint_state from talker-robot"]


@pytest.mark.slow
def test_sigkilled_recording_is_readable(procs, zctx, endpoints, run_dir):
    recorder, client = start_recording(procs, zctx, endpoints, run_dir, "--flush-interval", "0.1")
    time.sleep(0.5)  # several flushes
    recorder.send_signal(signal.SIGKILL)
    recorder.wait(timeout=10)

    # mcap's own stream reader over the records, stopping at the torn end.
    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    decoded = 0
    with open(run_dir / "run.mcap", "rb") as handle:
        try:
            for record in StreamReader(handle).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record
                elif isinstance(record, Channel):
                    channels[record.id] = record
                elif isinstance(record, Message):
                    schema = schemas[channels[record.channel_id].schema_id]
                    classes_from_schema(schema.data)[schema.name].FromString(record.data)
                    decoded += 1
        except EndOfFile:
            pass
    assert decoded >= 200

    info = subprocess.run([HIL, "bag", "info", str(run_dir / "run.mcap")], capture_output=True, text=True,
                          timeout=60)
    assert info.returncode == 0, info.stderr
    assert "TRUNCATED" in info.stdout and "recorder summary: none" in info.stdout
    assert "scenario: reach" in info.stdout


@pytest.mark.parametrize(
    "target, expected",
    [
        ("missing-folder/run.mcap", "does not exist"),
        ("a-file/run.mcap", "does not exist"),
        ("/dev/full", "No space left on device"),
        ("/proc/run.mcap", "cannot write bag"),
    ],
)
def test_unwritable_output_is_a_clear_error_at_start(run_dir, target, expected):
    (run_dir / "a-file").write_text("not a folder")
    output = target if target.startswith("/") else str(run_dir / target)
    result = subprocess.run([HIL, "bag", "record", "-o", output, "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (run_dir / "recorder.rep").exists(), "it must fail before binding anything"


def test_disk_full_while_recording_stops_with_a_clear_error(procs, run_dir):
    """A file size limit (RLIMIT_FSIZE) makes writes fail mid-run as a full disk would."""
    import resource

    def limit() -> None:
        # Room for the scene channels too (URDF, link transforms: tests/test_bag_scene.py).
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    procs.python(TALKER, str(run_dir), "500", "0")
    recorder = procs.hil("bag", "record", "-o", str(run_dir / "run.mcap"), "--run-dir", str(run_dir),
                         "--flush-interval", "0.1", preexec_fn=limit)
    _, err = recorder.communicate(timeout=120)
    assert recorder.returncode == 1
    assert b"cannot write bag" in err and b"File too large" in err and b"Traceback" not in err
    info = subprocess.run([HIL, "bag", "info", str(run_dir / "run.mcap")], capture_output=True, text=True,
                          timeout=60)
    assert info.returncode == 0 and "TRUNCATED" in info.stdout  # readable up to the last good chunk
    assert int(info.stdout.split("messages:")[1].split()[0]) > 50


def test_bad_meta_is_a_usage_error(run_dir):
    result = subprocess.run([HIL, "bag", "record", "-o", str(run_dir / "x.mcap"), "--run-dir", str(run_dir),
                             "--meta", "no-equals-sign"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr

