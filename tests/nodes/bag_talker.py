"""A small real node for bag tests: plays robot, policy and runner at once.

Publishes JointState (robot PUB), JointCommand answering each state (policy
PUB) and a Goal every 50 states (runner PUB) at ``rate`` Hz, answers the
standard services as role "robot", and leaves out one envelope seq of
joint_state in every ``gap_every`` (0: none) so recorders have drops to count.

Usage: python tests/nodes/bag_talker.py RUN_DIR [RATE_HZ] [GAP_EVERY]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from bus.endpoints import Endpoints
from bus.node import Node
from bus.pubsub import Publisher
from bus.topics import GOAL, JOINT_COMMAND, JOINT_STATE
from roarm.joints import NAMES
from schemas import messages_pb2


def main(run_dir: str, rate_hz: float = 200.0, gap_every: int = 0) -> None:
    endpoints = Endpoints.for_run(Path(run_dir))
    node = Node("robot", "talker-robot", endpoints, heartbeat_period_s=0.2)
    policy = Publisher(node.ctx, endpoints["policy"].pub, "talker-policy")
    runner = Publisher(node.ctx, endpoints["runner"].pub, "talker-runner")
    node.install_signal_handlers()
    k = 0
    next_tick = time.monotonic()
    while node.running:
        node.spin(timeout_ms=max(0, int((next_tick - time.monotonic()) * 1000)))
        if time.monotonic() < next_tick:
            continue
        next_tick += 1.0 / rate_hz
        if k % 50 == 0:
            goal = messages_pb2.Goal(stamp_ns=time.monotonic_ns(), seq=k // 50, id=f"g{k // 50}", tolerance=0.01)
            goal.tcp.x, goal.tcp.y, goal.tcp.z = 0.25, 0.05 * ((k // 50) % 3 - 1), 0.2
            runner.publish(GOAL, goal)
        q = [0.3 * math.sin(0.01 * k + i) for i in range(len(NAMES))]
        state = messages_pb2.JointState(stamp_ns=time.monotonic_ns(), seq=k, names=list(NAMES),
                                        position=q, velocity=[0.0] * len(q), sim_time=k * 0.01,
                                        tcp=[0.2 + 0.01 * math.sin(0.01 * k), 0.0, 0.2], trusted=True)
        if gap_every and k % gap_every == gap_every - 1:
            node.publisher.encoder.next_seq(JOINT_STATE)  # this envelope seq is never sent
        node.publish(JOINT_STATE, state)
        command = messages_pb2.JointCommand(stamp_ns=time.monotonic_ns(), seq=k, obs_seq=k,
                                            position=[x + 0.01 for x in q])
        policy.publish(JOINT_COMMAND, command)
        k += 1
    policy.close()
    runner.close()
    node.close()


if __name__ == "__main__":
    main(sys.argv[1], *(float(a) if i == 0 else int(a) for i, a in enumerate(sys.argv[2:])))
