"""Serial faults on the real-arm path, end to end: the firmware emulator
(``hil emulate roarm``, a real pty) and ``hil node hw`` as two processes.

The link-level behaviour (a vanished pty faults the link, a new one is
reopened with a new generation, garbage stays bounded) is tested in
tests/test_hw_link.py; here the whole node must ride it out: report the
fault in its heartbeat, publish no state while unplugged, reconnect, resume
states, and count garbage without losing the good lines around it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from bus.endpoints import Endpoints
from bus.pubsub import Subscriber
from bus.topics import HEARTBEAT, JOINT_STATE
from tests.conftest import wait_ready
from schemas import services_pb2

GARBAGE_KINDS = ("serial.text", "serial.number", "serial.bad_json", "serial.partial", "serial.bad_feedback",
                 "serial.other_json", "serial.overlong", "serial.empty")


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, period_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return condition()


@pytest.mark.slow
def test_unplug_replug_and_garbage_bursts_on_the_emulator(procs, run_dir: Path, endpoints: Endpoints,
                                                          zctx: zmq.Context) -> None:
    link = run_dir / "roarm0"
    control = run_dir / "faults"
    os.mkfifo(control)
    emulator = procs.hil("emulate", "roarm", "--link", str(link), "--control", str(control), "--seed", "1")
    assert wait_until(lambda: link.exists(), timeout_s=60), "the emulator never made its pty"
    procs.hil("node", "hw", "--port", str(link), "--rate", "20", "--deadline-ms", "300", "--run-dir", str(run_dir))
    robot = wait_ready(zctx, endpoints, "robot", timeout_s=60)
    # O_RDWR: opening never blocks, and the emulator reading the FIFO sees no EOF
    fifo = os.open(control, os.O_RDWR)
    watch = Subscriber(zctx, [endpoints["robot"].pub], [HEARTBEAT, JOINT_STATE])
    last = {"state": "", "states": 0, "state_at": 0.0}

    def pump() -> dict:
        for env in watch.drain():
            if env.topic == HEARTBEAT:
                last["state"] = env.message.state
            else:
                last["states"] += 1
                last["state_at"] = time.monotonic()
        return last

    def metrics() -> dict[str, float]:
        return dict(robot.call("info", services_pb2.InfoRequest()).metrics)

    try:
        assert wait_until(lambda: pump()["states"] > 10, timeout_s=60), "no states from the emulated arm"

        # -- unplug for 2 s: the node faults, publishes nothing, reconnects, resumes
        reconnects = metrics().get("serial.reconnect", 0)
        os.write(fifo, b"unplug 2\n")
        assert wait_until(lambda: pump()["state"] == "fault", timeout_s=20), "the unplug was not reported"
        unplugged_at = time.monotonic()
        time.sleep(0.5)
        pump()
        # nothing measured while the cable is out (a state already in flight may land first)
        assert last["state_at"] < unplugged_at + 0.2
        assert wait_until(lambda: metrics().get("serial.reconnect", 0) > reconnects, timeout_s=30), "no reconnect"
        resumed = pump()["states"]
        assert wait_until(lambda: pump()["states"] > resumed + 10, timeout_s=30), "states did not resume"
        assert wait_until(lambda: pump()["state"] == "ok", timeout_s=20)

        # -- a garbage burst mid-stream: counted, good lines around it still used
        before = metrics()
        states = pump()["states"]
        os.write(fifo, b"garbage 4000\n")
        assert wait_until(lambda: sum(metrics().get(k, 0) - before.get(k, 0) for k in GARBAGE_KINDS) > 0,
                          timeout_s=20), "the garbage was not counted"
        assert wait_until(lambda: pump()["states"] > states + 10, timeout_s=30), "states stopped after garbage"
        assert robot.call("ping", services_pb2.PingRequest()).role == "robot"
        assert emulator.poll() is None
    finally:
        os.close(fifo)
        watch.close()
    robot.call("shutdown", services_pb2.ShutdownRequest(reason="test done"))
    robot.close()
