"""The ``hil bus`` commands against real processes."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import zmq

from bus.endpoints import Endpoints
from bus.envelope import Encoder
from bus.topics import JOINT_STATE
from schemas import SCHEMA_VERSION, messages_pb2
from tests.conftest import HIL, Procs


def test_version_and_help_show_examples() -> None:
    out = subprocess.run([HIL, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("hil, version ")
    for group in (["bus", "echo"], ["bus", "hz"], ["bus", "ping"]):
        text = subprocess.run([HIL, *group, "--help"], capture_output=True, text=True, check=True).stdout
        assert "Example" in text and f"hil {' '.join(group)}" in text


def test_echo_prints_what_a_publisher_sends(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                            zctx: zmq.Context) -> None:
    pub = zctx.socket(zmq.PUB)
    pub.bind(endpoints["robot"].pub)
    echo = procs.hil("bus", "echo", JOINT_STATE, "--json", "--count", "3", "--run-dir", str(run_dir))
    enc = Encoder("test-robot")
    deadline = time.monotonic() + 30
    k = 0
    while echo.poll() is None and time.monotonic() < deadline:
        pub.send_multipart(enc.encode(JOINT_STATE, messages_pb2.JointState(seq=k, position=[0.1 * k])))
        k += 1
        time.sleep(0.02)
    out, err = echo.communicate(timeout=10)
    assert echo.returncode == 0, err
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert len(lines) == 3
    assert all(line["topic"] == JOINT_STATE and line["src"] == "test-robot" for line in lines)
    seqs = [line["message"].get("seq", "0") for line in lines]
    assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)


def test_ping_a_dead_role_fails_with_a_hint(run_dir: Path) -> None:
    out = subprocess.run([HIL, "bus", "ping", "policy", "--timeout", "0.2", "--run-dir", str(run_dir)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "is the node running" in out.stderr


def test_ping_and_hz_against_a_live_node(procs: Procs, run_dir: Path) -> None:
    procs.python("tests/nodes/listener.py", str(run_dir))
    ping = subprocess.run([HIL, "bus", "ping", "robot", "-n", "2", "--timeout", "5", "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=60)
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.count(f"listener schema {SCHEMA_VERSION}") == 2
    hz = subprocess.run([HIL, "bus", "hz", "node/heartbeat", "--duration", "2.5", "--run-dir", str(run_dir)],
                        capture_output=True, text=True, timeout=60)
    assert hz.returncode == 0, hz.stderr
    rates = [float(line.split()[1]) for line in hz.stdout.splitlines() if "Hz" in line]
    assert rates and 2.0 < rates[-1] < 8.0  # the listener beats at 5 Hz
