"""Fault injection on real processes: SIGKILL a node mid-run, restart the
policy, a subscriber that never reads. Every test ends with no process left.

Runs on the ``mock`` target (CI); the serial faults of the real-arm path are
in tests/test_faults_serial.py.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from bus.endpoints import Endpoints
from bus.envelope import decode
from bus.topics import JOINT_COMMAND, JOINT_STATE
from tests.conftest import wait_ready
from schemas import services_pb2


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, period_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return condition()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; the runner starts each node in its own session)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


SCENARIO = """\
name: {name}
robot: {{target: mock, mode: {mode}, dt: 0.02, initial_pose: home}}
policy: {{scripted: ik}}
seed: 0
goals:
  - id: far
    tcp: [0.318, -0.174, 0.222]
    tolerance_mm: 10
    timeout_s: {timeout_s}
{actions}
assertions:
  no_crash: true
{assertions}
record: false
"""


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.mark.slow
def test_sigkill_policy_mid_run_robot_holds_and_runner_reports(procs, tmp_path: Path) -> None:
    """The scenario SIGKILLs the policy at t=0.3 s: the robot holds where it
    is (no new command: the last target stays), the runner judges the hold
    and reports the kill and the unreached goal; nothing is left running.

    Realtime, so the kill lands at its time: a lockstep run with a live
    policy can outrun the runner's clock by the time the kill is due."""
    scenario = tmp_path / "kill_policy.yaml"
    scenario.write_text(SCENARIO.format(
        name="kill-policy", mode="realtime", timeout_s=1.5, actions="actions:\n  - {at_s: 0.3, kill: policy}",
        assertions="  hold_after_kill: {max_drift_rad: 0.02, settle_s: 0.2}"))
    out = tmp_path / "out"
    run = procs.hil("run", str(scenario), "--target", "mock", "--out", str(out), "--no-progress")
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr.decode()[-2000:]  # the goal cannot be reached without a policy
    result = report(out)
    verdicts = {v["name"]: v for v in result["verdicts"]}
    assert verdicts["hold_after_kill"]["passed"], verdicts["hold_after_kill"]
    assert verdicts["hold_after_kill"]["figure"] <= 0.02
    assert not verdicts["goal:far"]["passed"]
    assert result["nodes"]["policy"]["exit_code"] == -signal.SIGKILL
    assert result["nodes"]["robot"]["exit_code"] == 0  # the robot survived and stopped cleanly
    assert "killing policy" in stderr.decode() + stdout.decode() or "killed" in json.dumps(result["nodes"]["policy"])
    for node in result["nodes"].values():
        assert not alive(node["pid"])


@pytest.mark.slow
def test_sigkill_robot_mid_run_policy_stops_and_runner_reports(procs, tmp_path: Path, zctx: zmq.Context) -> None:
    """SIGKILL the robot from outside while a run is going: the policy only
    sends holds from then on (no new commands), the runner notices, reports
    the robot's death and ends the run without hanging."""
    scenario = tmp_path / "long.yaml"
    scenario.write_text(SCENARIO.format(name="kill-robot", mode="lockstep", timeout_s=60.0, actions="", assertions=""))
    out = tmp_path / "out"
    run = procs.hil("run", str(scenario), "--target", "mock", "--out", str(out), "--no-progress")

    def node_pids() -> dict[str, int]:
        found = {}
        for pid in children(run.pid):
            argv = cmdline(pid)
            if "node" in argv and len(argv) > argv.index("node") + 1:
                found[argv[argv.index("node") + 1]] = pid
        return found

    assert wait_until(lambda: {"sim", "policy"} <= set(node_pids()), timeout_s=60), "nodes never started"
    pids = node_pids()
    argv = cmdline(pids["policy"])
    endpoints = Endpoints.for_run(Path(argv[argv.index("--run-dir") + 1]))
    commands = zctx.socket(zmq.SUB)
    commands.linger = 0
    commands.subscribe(JOINT_COMMAND.encode())
    commands.connect(endpoints["policy"].pub)
    # the loop is running: the policy answers states with real (non-hold) commands
    assert commands.poll(60_000), "the policy never commanded"
    assert wait_until(lambda: not decode(commands.recv_multipart()).message.hold, timeout_s=30, period_s=0)

    os.kill(pids["sim"], signal.SIGKILL)
    killed_at = time.monotonic()
    after = []
    while run.poll() is None and time.monotonic() - killed_at < 60:
        if commands.poll(50):
            after.append(decode(commands.recv_multipart()).message)
    assert run.poll() is not None, "the runner hung after the robot died"
    # a command in flight when the robot died may still arrive; afterwards only holds
    late = [c for c in after[3:] if not c.hold]
    assert not late, f"the policy kept commanding a dead robot: {late[:2]}"
    stdout, stderr = run.communicate(timeout=10)
    assert run.returncode == 1
    result = report(out)
    assert "robot" in (result["error"] or "") or "sim" in (result["error"] or ""), result["error"]
    assert result["nodes"]["robot"]["exit_code"] == -signal.SIGKILL
    assert result["nodes"]["policy"]["exit_code"] is not None
    assert wait_until(lambda: not any(alive(p) for p in pids.values()), timeout_s=20)
    commands.close(0)


@pytest.mark.slow
def test_policy_restart_resumes_the_loop(procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> None:
    """Lockstep robot and a policy; SIGKILL the policy: the robot holds its
    position and counts deadline misses; start a new policy: the loop resumes
    (states are answered again, no new misses)."""
    procs.hil("node", "sim", "--backend", "mock", "--mode", "lockstep", "--autostart", "--deadline-ms", "100",
              "--run-dir", str(run_dir))
    robot = wait_ready(zctx, endpoints, "robot", timeout_s=60)

    def metrics() -> dict[str, float]:
        return dict(robot.call("info", services_pb2.InfoRequest()).metrics)

    states = zctx.socket(zmq.SUB)
    states.linger = 0
    states.subscribe(JOINT_STATE.encode())
    states.connect(endpoints["robot"].pub)

    def newest_state():
        assert states.poll(20_000)
        frames = states.recv_multipart()
        while states.poll(0):
            frames = states.recv_multipart()
        return decode(frames).message

    def answered() -> float:
        return metrics().get("answer_count", 0.0)

    policy = procs.hil("node", "policy", "--scripted", "hold", "--run-dir", str(run_dir))
    assert wait_until(lambda: answered() > 50, timeout_s=60), "the loop never ran"

    os.killpg(policy.pid, signal.SIGKILL)
    policy.wait(timeout=10)
    misses = metrics().get("deadline_miss", 0.0)
    assert wait_until(lambda: metrics().get("deadline_miss", 0.0) >= misses + 5, timeout_s=30)
    held = newest_state()
    time.sleep(0.5)
    still = newest_state()
    assert still.seq > held.seq  # the robot keeps stepping on its deadline ...
    assert list(still.position) == pytest.approx(list(held.position), abs=1e-3)  # ... holding its position

    count = answered()
    procs.hil("node", "policy", "--scripted", "hold", "--run-dir", str(run_dir))
    assert wait_until(lambda: answered() > count + 50, timeout_s=60), "the loop did not resume"
    misses = metrics()["deadline_miss"]
    count = answered()
    time.sleep(1.0)
    assert answered() > count + 5
    assert metrics()["deadline_miss"] <= misses + 1  # answered again, not holding on deadlines
    states.close(0)
    robot.call("shutdown", services_pb2.ShutdownRequest(reason="test done"))
    robot.close()


FLOODER = textwrap.dedent("""
    import sys, time, zmq
    from pathlib import Path
    from bus.endpoints import Endpoints
    from bus.node import Node
    from bus.topics import JOINT_STATE
    from schemas import messages_pb2, services_pb2

    node = Node("robot", "flooder", Endpoints.for_run(Path(sys.argv[1])))
    node.install_signal_handlers()
    state = messages_pb2.JointState(position=[0.1] * 6, velocity=[0.0] * 6, effort=[0.0] * 6,
                                    names=["x" * 40] * 6)
    sent = 0
    # how many states went out (a PingReply field carries the number)
    node.add_service("sent", services_pb2.PingRequest, lambda _r: services_pb2.PingReply(uptime_s=float(sent)))
    while node.running:
        for _ in range(500):
            state.seq = sent
            node.publish(JOINT_STATE, state)
            sent += 1
        node.spin(0)
    node.close()
""")


@pytest.mark.slow
def test_slow_subscriber_keeps_publisher_memory_bounded(procs, run_dir: Path, endpoints: Endpoints,
                                                        zctx: zmq.Context) -> None:
    """A subscriber that never reads while a node publishes as fast as it can:
    the per-subscriber queues stop at their high-water marks (PUB 10,000, SUB
    100,000), so the publisher's memory stops growing once they are full."""
    flooder = procs.python("-c", FLOODER, str(run_dir))
    client = wait_ready(zctx, endpoints, "robot", timeout_s=60)
    stuck = zctx.socket(zmq.SUB)  # never reads
    stuck.linger = 0
    stuck.subscribe(b"")
    stuck.connect(endpoints["robot"].pub)

    def sent() -> float:
        return client.call("sent", services_pb2.PingRequest()).uptime_s

    # fill both queues (≈110,000 messages), then measure from there: without
    # the bounds, 500,000 more states (≈300 B each) would add ≈150 MB
    assert wait_until(lambda: sent() > 200_000, timeout_s=120, period_s=0.2)
    warm = rss_kib(flooder.pid)
    start = sent()
    assert wait_until(lambda: sent() > start + 500_000, timeout_s=240, period_s=0.2)
    end = rss_kib(flooder.pid)
    assert end <= warm * 1.05 + 2048, f"publisher RSS grew from {warm} KiB to {end} KiB with a stuck subscriber"
    assert client.call("ping", services_pb2.PingRequest()).node == "flooder"
    stuck.close(0)
    client.call("shutdown", services_pb2.ShutdownRequest(reason="test done"))
    assert flooder.wait(timeout=20) == 0
    client.close()
