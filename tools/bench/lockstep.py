"""A lockstep loop as two real processes, shared by the benchmarks.

``LockstepPair`` starts a sim node (``python -m sim_node``, dt 10 ms, a
generous 1 s deadline) and one process in the policy's place, both on the
process harness in one run folder, and waits until both answer ping. The
policy is by default the reactive responder below (every JointState
answered with ``scripted_target(seq)``: the cheapest policy possible, so the
loop measures the bus and the node); ``hil bench policy`` puts a real
policy node there instead.

``cpus``: both processes run on those CPUs (``--cpus``, bus/affinity.py),
e.g. one core for the whole sequential loop.

Also ``python -m tools.bench.lockstep responder RUN_DIR [CPUS]``: the
responder alone (tests use it as a scripted policy).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import zmq

from bus.affinity import parse_cpus, pin
from bus.client import NodeClient
from bus.endpoints import Endpoints
from bus.node import Node
from bus.processes import Processes
from bus.topics import JOINT_COMMAND, JOINT_STATE, QueuePolicy
from roarm.joints import pose
from roarm.robot_client import RobotClient
from schemas import messages_pb2

READY_S = 60.0  # start-up (imports of MuJoCo, onnxruntime) on a loaded machine


def one_core() -> str:
    """The CPU a pinned loop runs on: this process's last (``--cpus``), leaving the others to the rest."""
    return str(max(os.sched_getaffinity(0)))


def labelled(name: str, cpus: str | None) -> str:
    """A row's name in the bench tables: ``mock``, or ``mock (CPU 1)`` for the loop pinned there."""
    return f"{name} (CPU {cpus})" if cpus else name


def scripted_target(seq: int) -> np.ndarray:
    """A smooth, deterministic trajectory around home: the same for the same seq."""
    phase = 2 * math.pi * seq / 200
    offset = np.array([0.4 * math.sin(phase), 0.3 * math.sin(phase), 0.3 * math.cos(phase), 0.2 * math.sin(phase),
                       0.0, 0.5 + 0.5 * math.sin(phase)])
    return pose("home") + offset


def responder(run_dir: Path, cpus: frozenset[int] | None = None) -> None:
    """A reactive policy stand-in: every JointState answered with scripted_target(seq)."""
    pin(cpus)
    node = Node("policy", "responder", Endpoints.for_run(run_dir))
    states = node.subscribe("robot", [JOINT_STATE], policy=QueuePolicy.QUEUE)
    node.install_signal_handlers()
    seq = 0
    next_service = 0.0
    while node.running:
        # Wait on the state socket alone (the hot path); serve ping/info every 20 ms.
        envelope = states.recv(20)
        now = time.monotonic()
        if envelope is None or now >= next_service:
            node.spin(0)
            next_service = now + 0.02
        if envelope is None:
            continue
        state = envelope.message
        assert isinstance(state, messages_pb2.JointState)
        seq += 1
        node.publish(JOINT_COMMAND, messages_pb2.JointCommand(
            stamp_ns=time.monotonic_ns(), seq=seq, obs_seq=state.seq,
            position=scripted_target(state.seq).tolist()))
    node.close()


class LockstepPair:
    """A sim node and a policy-side process in a fresh run folder under ``workdir``; ``close`` reaps both.

    ``sim_args`` go to the sim node after the common ones; ``policy_args``
    (if given) start ``python -m policy_node POLICY_ARGS --run-dir DIR``
    instead of the responder.
    """

    def __init__(self, workdir: Path, backend: str, mode: str, *sim_args: str,
                 policy_args: Sequence[str] | None = None, cpus: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"{backend[:4]}-", dir=workdir))
        self.endpoints = Endpoints.for_run(self.dir)
        self.ctx = zmq.Context()
        self.robot = RobotClient(self.ctx, self.endpoints["robot"].rep, "bench", timeout_s=5.0, retries=1)
        self.policy = NodeClient(self.ctx, self.endpoints["policy"].rep, "bench", timeout_s=5.0, retries=1)
        self.processes = Processes()
        python = sys.executable
        pinned = ["--cpus", cpus] if cpus else []
        policy_argv = ([python, "-m", "policy_node", *policy_args, *pinned, "--run-dir", str(self.dir)] if policy_args
                       else [python, "-m", "tools.bench.lockstep", "responder", str(self.dir), *([cpus] if cpus else [])])
        try:
            self.sim = self.processes.start(
                "sim node", [python, "-m", "sim_node", "--backend", backend, "--mode", mode, "--dt", "0.01",
                             "--deadline-ms", "1000", "--run-dir", str(self.dir), *pinned, *sim_args],
                role="robot", stdout=subprocess.DEVNULL)
            self.policy_process = self.processes.start("policy", policy_argv, role="policy",
                                                       stdout=subprocess.DEVNULL)
            self.processes.wait_ready(self.sim, self.robot.answers_ping, READY_S)
            self.processes.wait_ready(self.policy_process, self.policy.answers_ping, READY_S)
        except BaseException:
            self.close()
            raise

    def steps(self) -> float:
        """The sim node's step counter."""
        return self.robot.info().metrics["steps"]

    def wait_running(self, what: str, steps: float = 200, timeout_s: float = 30.0) -> None:
        """Until the loop has made ``steps`` steps (joined and warmed up); RuntimeError naming ``what`` otherwise."""
        deadline = time.monotonic() + timeout_s
        while self.steps() < steps:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: the lockstep loop did not start (is the policy process running?)")
            time.sleep(0.05)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time so far of (the sim node, the policy process), each with whatever it started."""
        return self.sim.cpu_seconds(), self.policy_process.cpu_seconds()

    def close(self) -> None:
        self.processes.close()
        self.robot.close()
        self.policy.close()
        self.ctx.destroy(linger=0)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "responder":
        responder(Path(sys.argv[2]), parse_cpus(sys.argv[3]) if len(sys.argv) == 4 else None)
    else:
        sys.exit("usage: python -m tools.bench.lockstep responder RUN_DIR [CPUS]")
