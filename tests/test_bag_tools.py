"""hil bag info / export / plot on bags written by the real BagWriter."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from tests.bag_factory import synthetic_bag
from tests.conftest import HIL


def hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, "bag", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    return synthetic_bag(tmp_path / "run.mcap", steps=200, gap_every=20,
                         provenance={"scenario": "reach", "policy_sha256": "ab" * 32, "seed": "3"})


def test_info_reports_topics_counts_rates_drops_and_provenance(bag):
    result = hil("info", "--json", str(bag))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["complete"] and not info["truncated"]
    channels = {c["topic"]: c for c in info["channels"]}
    assert channels["robot/joint_state"]["count"] == 200
    assert channels["robot/joint_state"]["dropped"] == 10  # one seq skipped in every 20
    assert channels["robot/joint_command"]["dropped"] == 0
    assert channels["task/goal"]["count"] == 4
    assert channels["robot/joint_state"]["rate_hz"] > 0
    assert info["dropped"] == 10 and info["messages"] == 200 + 200 + 4 + 8
    assert info["provenance"]["policy_sha256"] == "ab" * 32
    assert json.loads(info["recorder_summary"]["robot/joint_state from sim"])["dropped"] == 10

    text = hil("info", str(bag)).stdout
    assert "robot/joint_state" in text and "10 dropped" in text and "scenario: reach" in text


def test_info_on_a_file_that_is_not_a_bag(tmp_path):
    (tmp_path / "x.mcap").write_text("hello")
    result = hil("info", str(tmp_path / "x.mcap"))
    assert result.returncode == 1 and "not an MCAP file" in result.stderr
    result = hil("info", str(tmp_path / "missing.mcap"))
    assert result.returncode == 1 and "no bag at" in result.stderr


def test_export_writes_one_flat_csv_per_topic(bag, tmp_path):
    out = tmp_path / "csv"
    result = hil("export", str(bag), "--csv", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "node_heartbeat.csv", "robot_joint_command.csv", "robot_joint_state.csv", "task_goal.csv"]
    with open(out / "robot_joint_state.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 200
    assert {"log_time_ns", "sequence", "src", "seq", "position.0", "position.5", "tcp.2", "names.0"} <= set(rows[0])
    assert rows[3]["seq"] == "3" and rows[0]["names.0"] == "base" and rows[0]["src"] == "sim"
    with open(out / "task_goal.csv") as handle:
        goals = list(csv.DictReader(handle))
    assert goals[1]["id"] == "g1" and float(goals[1]["tcp.x"]) == pytest.approx(0.22)
    with open(out / "robot_joint_command.csv") as handle:
        commands = list(csv.DictReader(handle))
    assert commands[7]["hold"] == "True" and commands[8]["hold"] == "False"

    only = tmp_path / "only"
    assert hil("export", str(bag), "--csv", str(only), "--topics", "task/goal").returncode == 0
    assert [p.name for p in only.iterdir()] == ["task_goal.csv"]


def test_plot_writes_a_real_png(bag, tmp_path):
    out = tmp_path / "run.png"
    result = hil("plot", str(bag), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "200 states, 200 commands, 4 goals" in result.stdout
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000


def test_plot_of_a_bag_without_joint_topics_is_a_clear_error(tmp_path):
    from tests.bag_factory import Clock, envelope
    from bus.envelope import Encoder
    from schemas import messages_pb2
    from tools.bag.writer import BagWriter

    writer = BagWriter(tmp_path / "hb.mcap", {})
    writer.write("robot", envelope(Encoder("sim"), "node/heartbeat", messages_pb2.Heartbeat(node="sim"), Clock()))
    writer.close()
    result = hil("plot", str(tmp_path / "hb.mcap"), "-o", str(tmp_path / "hb.png"))
    assert result.returncode == 1 and "no robot/joint_state" in result.stderr
