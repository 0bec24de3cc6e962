"""Hardware-in-the-loop bench tests (marker ``hil``): the reach policy, unchanged,
driving ``hil node hw``.

By default the arm is the firmware emulator (a separate process on a real
pty); with ``pytest --roarm-port /dev/ttyUSB0 -m hil`` the same tests drive
a real RoArm-M3 and no emulator is started. The summary line at the end of
the run says which one it was. Fault injection needs the emulator: on a real
arm those tests are skipped with that reason (and counted in the summary).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zmq

from bus.endpoints import Endpoints
from bus.client import NodeClient
from tests.conftest import Procs
from tools.bench.rig import Probe, inject, start_emulator

pytestmark = [pytest.mark.hil, pytest.mark.slow]

# Two goals a short reach from home (TCP 0.344, 0, 0.344), in the reach
# policy's task space; far enough to need real motion, safe on a real arm.
GOALS = (np.array([0.30, 0.10, 0.28]), np.array([0.32, -0.08, 0.25]))
TOLERANCE = 0.01  # m


@dataclass
class Arm:
    port: str
    control: Path | None  # the emulator's fault FIFO; None on a real arm


@pytest.fixture
def arm(request: pytest.FixtureRequest, procs: Procs, run_dir: Path) -> Arm:
    port = request.config.getoption("--roarm-port")
    if port:
        return Arm(port, None)
    link, control = run_dir / "arm", run_dir / "ctl"
    start_emulator(procs, link, control=control)
    return Arm(str(link), control)


@pytest.fixture
def bench(arm: Arm, procs: Procs, run_dir: Path, endpoints: Endpoints, zctx: zmq.Context) -> Iterator[tuple]:
    """hw_node on the arm, the reach policy exactly as against the sim, and a
    probe in the runner's place sending goals."""
    robot = procs.hil("node", "hw", "--port", arm.port, "--run-dir", str(run_dir))
    procs.wait_ready(robot, NodeClient(zctx, endpoints["robot"].rep, "test", timeout_s=2.0, retries=2).answers_ping,
                     20.0)
    policy = procs.hil("node", "policy", "--model", "policies/reach.onnx", "--run-dir", str(run_dir))
    procs.wait_ready(policy, NodeClient(zctx, endpoints["policy"].rep, "test", timeout_s=2.0,
                                        retries=2).answers_ping, 30.0)
    probe = Probe(zctx, endpoints, role="runner")
    probe.until(lambda: probe.last_state is not None and probe.state_is("ok"), 20, "a trusted state")
    yield probe, policy
    probe.close()


def reach(probe: Probe, goal: np.ndarray, timeout_s: float = 45.0) -> None:
    """Publish the goal (again and again: the policy may still be joining) until
    the TCP the robot reports is within tolerance."""
    probe.until(lambda: float(np.linalg.norm(np.asarray(probe.last_state.tcp) - goal)) < TOLERANCE,
                timeout_s, f"the TCP within {TOLERANCE * 1000:g} mm of {goal.tolist()}",
                each=lambda: (probe.goal(goal, TOLERANCE), time.sleep(0.05)))


def test_reach_policy_reaches_goals_on_the_arm(bench: tuple) -> None:
    probe, policy = bench
    for goal in GOALS:
        reach(probe, goal)
    assert policy.poll() is None


def test_robot_holds_when_the_policy_dies(bench: tuple) -> None:
    probe, policy = bench
    start = np.asarray(probe.last_state.tcp)
    # Head for the far goal, kill the policy half way.
    probe.until(lambda: float(np.linalg.norm(np.asarray(probe.last_state.tcp) - start)) > 0.03, 30,
                "the arm under way", each=lambda: (probe.goal(GOALS[0]), time.sleep(0.05)))
    policy.send_signal(signal.SIGKILL)
    policy.wait(timeout=10)
    probe.until(lambda: probe.counter("deadline_hold") >= 1, 10, "the robot's deadline hold")
    settle = time.monotonic()
    while time.monotonic() - settle < 0.5:  # the servos stop at the held position
        probe.pump(50)
    held = probe.position()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        probe.pump(50)
    np.testing.assert_allclose(probe.position(), held, atol=0.01)
    assert probe.state_is("ok", "holding")


def test_survives_garbage_and_unplug_while_driving(arm: Arm, bench: tuple) -> None:
    if arm.control is None:
        pytest.skip("fault injection needs the emulator (a real arm was given with --roarm-port)")
    probe, policy = bench
    reach(probe, GOALS[0])
    inject(arm.control, "garbage 20000")
    probe.until(lambda: probe.counter("serial.overlong") >= 1, 10, "the garbage counted",
                each=lambda: probe.goal(GOALS[1]))
    inject(arm.control, "unplug 1.5")
    probe.until(lambda: probe.state_is("fault"), 10, "a fault heartbeat", each=lambda: probe.goal(GOALS[1]))
    probe.until(lambda: probe.state_is("ok") and probe.counter("serial.reconnect") >= 1, 20, "the reconnect",
                each=lambda: probe.goal(GOALS[1]))
    reach(probe, GOALS[1])
    assert policy.poll() is None
