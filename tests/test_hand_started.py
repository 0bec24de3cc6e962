"""Nodes started by hand, as a new user would: each says "ready" once with its
role and endpoints, ``hil goal send`` moves the arm, ``hil bus echo`` says
what it waits for, ``hil bus info`` is readable. Real processes, real
onnxruntime policy, a realtime mock robot."""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import zmq

from bus.endpoints import Endpoints
from bus.pubsub import Subscriber
from bus.topics import JOINT_STATE, QueuePolicy
from schemas import messages_pb2
from tests.conftest import HIL, Procs, wait_ready

TARGET = (0.25, 0.1, 0.2)
TOLERANCE_MM = 10.0


def _hil(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HIL, *args], capture_output=True, text=True, timeout=timeout)


def _ready_lines(err: bytes) -> list[str]:
    return [line for line in err.decode().splitlines() if "] ready:" in line]


def test_goal_send_moves_a_hand_started_sim(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                            zctx: zmq.Context) -> None:
    run = ["--run-dir", str(run_dir)]
    # nothing there yet: exit 2 and why
    alone = _hil("goal", "send", "--tcp", *map(str, TARGET), *run)
    assert alone.returncode == 2 and "no robot" in alone.stderr and "Traceback" not in alone.stderr

    robot = procs.hil("node", "sim", "--backend", "mock", "--mode", "realtime", *run)
    wait_ready(zctx, endpoints, "robot", 60.0).close()
    no_policy = _hil("goal", "send", "--tcp", *map(str, TARGET), *run)
    assert no_policy.returncode == 2 and "no policy" in no_policy.stderr, no_policy.stderr
    assert "hil node policy" in no_policy.stderr

    policy = procs.hil("node", "policy", "--model", "policies/reach.onnx", *run)
    wait_ready(zctx, endpoints, "policy", 60.0).close()
    sent = _hil("goal", "send", "--tcp", *map(str, TARGET), "--tolerance", str(TOLERANCE_MM), "--timeout", "15",
                *run, timeout=120)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    found = re.search(r"reached in [\d.]+ s, ([\d.]+) mm from it", sent.stdout)
    assert found, sent.stdout
    assert float(found.group(1)) <= TOLERANCE_MM

    # The robot's own states agree: its tcp is at the target (the policy keeps the goal).
    states = Subscriber(zctx, [endpoints["robot"].pub], [JOINT_STATE], policy=QueuePolicy.LATEST)
    envelope = states.recv(10_000)
    assert envelope is not None
    state = envelope.message
    assert isinstance(state, messages_pb2.JointState)
    assert math.dist(state.tcp, TARGET) * 1e3 <= TOLERANCE_MM, list(state.tcp)
    states.close()

    # An unreachable point: not reached, exit 1, with the best distance.
    far = _hil("goal", "send", "--tcp", "0.9", "0.9", "0.9", "--timeout", "1", *run, timeout=120)
    assert far.returncode == 1 and "NOT reached" in far.stdout and "mm from it" in far.stdout, far.stdout
    bad = _hil("goal", "send", "--joints", "0", "0", "3.5", "0", "0", "0", *run)
    assert bad.returncode == 2 and "--joints[2]" in bad.stderr and "elbow" in bad.stderr

    for proc in (policy, robot):
        proc.terminate()
    for proc, role in ((policy, "policy"), (robot, "robot")):
        _, err = proc.communicate(timeout=30)
        lines = _ready_lines(err)
        assert len(lines) == 1, err.decode()
        assert f"role {role}" in lines[0] and endpoints[role].rep in lines[0] and endpoints[role].pub in lines[0]


def test_echo_says_what_it_waits_for(procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> None:
    run = ["--run-dir", str(run_dir)]
    # no publisher at all
    nobody = _hil("bus", "echo", JOINT_STATE, "--timeout", "4", *run)
    assert nobody.returncode == 1
    assert f"waiting for {JOINT_STATE}" in nobody.stderr and endpoints["robot"].pub in nobody.stderr
    assert "robot: does not answer ping" in nobody.stderr and "nothing answers" in nobody.stderr
    # a lockstep robot that answers ping but publishes no state before its reset
    procs.hil("node", "sim", "--backend", "mock", "--mode", "lockstep", *run)
    wait_ready(zctx, endpoints, "robot", 60.0).close()
    started = time.monotonic()
    quiet = _hil("bus", "echo", JOINT_STATE, "--timeout", "4", *run)
    assert quiet.returncode == 1
    assert "robot: sim answers ping" in quiet.stderr and "lockstep" in quiet.stderr, quiet.stderr
    assert quiet.stderr.count("waiting for") == 1
    assert time.monotonic() - started < 30


def test_bus_info_is_a_readable_summary(procs: Procs, run_dir: Path, endpoints: Endpoints,
                                        zctx: zmq.Context) -> None:
    run = ["--run-dir", str(run_dir)]
    procs.hil("node", "sim", "--backend", "mock", "--mode", "realtime", *run)
    wait_ready(zctx, endpoints, "robot", 60.0).close()
    time.sleep(0.5)  # a few steps, so counters are not all zero
    page = _hil("bus", "info", "robot", *run)
    assert page.returncode == 0, page.stderr
    text = page.stdout
    assert text.startswith("robot: sim (pid ")
    assert "backend   mock, realtime, period 10 ms (100 Hz)" in text
    assert re.search(r"health\s+ok", text), text
    assert re.search(r"elbow\s+-1\.000\s+2\.950", text), text
    assert "counters (not zero):" in text and re.search(r"\n\s+steps\s+[1-9]\d*", text), text
    assert len(text.splitlines()) < 60
    raw = _hil("bus", "info", "robot", "--raw", *run)
    assert raw.returncode == 0 and 'joint_names: "base"' in raw.stdout and "metrics {" in raw.stdout
