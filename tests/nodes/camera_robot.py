"""A real process that is a robot with a camera, as a simulator publishes them, for bag and policy tests.

    camera_robot.py RUN_DIR --steps N [--every K] [--size WxH] [--encoding raw|jpeg]
                    [--lockstep] [--period S] [--skip-frame STEP] [--wait-start S]

Each step k: when k % EVERY == 0, the frame of step k (``image``: a background
with a red disc at a step-dependent place) on ``camera/front/...`` with envelope step k and
timestamp = state k's stamp_ns; then JointState k. ``--lockstep`` waits for a command
answering state k before step k+1 (re-publishing state k every 0.2 s meanwhile), like
``hil node sim --mode lockstep``; otherwise one step per ``--period``. Answers ping/info
(lockstep, dt = period) and shutdown as the robot. Prints one JSON line at the end:
{"states", "frames", "commands": [[obs_seq, hold, [6 targets]], ...]}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from bus.endpoints import Endpoints
from bus.frames import FramePublisher
from bus.node import Node
from bus.topics import JOINT_COMMAND, JOINT_STATE
from roarm.joints import ROARM_M3
from schemas import messages_pb2, services_pb2

CAMERA = "front"


def image(step: int, width: int, height: int) -> np.ndarray:
    """A smooth blue-green background that differs per step, with a red disc whose place depends on the step."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = 20
    img[..., 1] = (x * 200 // max(1, width - 1) + step * 7) % 200
    img[..., 2] = (y * 200 // max(1, height - 1)) % 200
    centre = (width // 4 + (step * 3) % (width // 2), height // 2)
    cv2.circle(img, centre, max(2, width // 16), (255, 0, 0), -1)
    return img


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--encoding", default="raw", choices=("raw", "jpeg"))
    parser.add_argument("--lockstep", action="store_true")
    parser.add_argument("--period", type=float, default=0.01)
    parser.add_argument("--skip-frame", type=int, action="append", default=[])
    parser.add_argument("--wait-start", type=float, default=0.0, help="seconds before the first step")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    endpoints = Endpoints.for_run(Path(args.run_dir))

    def describe() -> services_pb2.NodeInfo:
        return services_pb2.NodeInfo(backend="camera_robot", mode="lockstep" if args.lockstep else "realtime",
                                     joint_names=ROARM_M3.names, lower=ROARM_M3.lower, upper=ROARM_M3.upper,
                                     max_velocity=ROARM_M3.max_velocity, dt=args.period)

    node = Node("robot", "camera_robot", endpoints, info=describe)
    frames = FramePublisher(node.ctx, endpoints["camera"].pub, "camera_robot")
    commands = node.subscribe("policy", [JOINT_COMMAND])
    node.install_signal_handlers()
    position = np.array(ROARM_M3.clamp(np.zeros(6)))
    answered: list[list[object]] = []
    published = 0
    deadline = time.monotonic() + args.wait_start
    while node.running and time.monotonic() < deadline:
        node.spin(20)
    for step in range(args.steps):
        if not node.running:
            break
        stamp = time.monotonic_ns()
        if step % args.every == 0 and step not in args.skip_frame:
            img = image(step, width, height)
            if args.encoding == "raw":
                frames.publish_raw(CAMERA, img.tobytes(), width=width, height=height, encoding="rgb8",
                                   stamp_ns=stamp, step=step)
            else:
                ok, data = cv2.imencode(".jpg", img[..., ::-1])
                assert ok
                frames.publish_compressed(CAMERA, data.tobytes(), fmt="jpeg", stamp_ns=stamp, step=step)
            published += 1
        state = messages_pb2.JointState(seq=step, stamp_ns=stamp, sim_time=step * args.period,
                                        names=ROARM_M3.names, position=position.tolist(), velocity=[0.0] * 6)
        node.publish(JOINT_STATE, state)
        if args.lockstep:
            resend = time.monotonic() + 0.2
            done = False
            while node.running and not done:
                node.spin(5)
                for envelope in commands.drain():
                    command = envelope.message
                    if command.obs_seq == step:  # type: ignore[attr-defined]
                        answered.append([step, bool(command.hold), list(command.position)])  # type: ignore[attr-defined]
                        done = True
                if not done and time.monotonic() > resend:
                    node.publish(JOINT_STATE, state)
                    resend = time.monotonic() + 0.2
        else:
            end = time.monotonic() + args.period
            while node.running and time.monotonic() < end:
                node.spin(max(0, int((end - time.monotonic()) * 1000)))
                for envelope in commands.drain():
                    command = envelope.message
                    answered.append([int(command.obs_seq), bool(command.hold), list(command.position)])  # type: ignore[attr-defined]
    # Stay a little for late answers and for the recorder to drain, then report.
    end = time.monotonic() + 0.3
    while node.running and time.monotonic() < end:
        node.spin(20)
    print(json.dumps({"states": args.steps, "frames": published, "commands": answered}), flush=True)
    frames.close()
    node.close()


if __name__ == "__main__":
    main()
