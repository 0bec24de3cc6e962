"""A deliberately slow frame viewer: a plain ZMQ SUB with a tiny receive
queue (so its backlog builds up in the publisher) reading one message every 0.5 s."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import zmq

from bus.endpoints import Endpoints


def main(run_dir: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 2)  # so the backlog builds up in the publisher
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(Endpoints.for_run(Path(run_dir))["camera"].pub)
    print("ready", flush=True)
    while True:
        if sock.poll(100):
            sock.recv_multipart()
        time.sleep(0.5)


if __name__ == "__main__":
    main(sys.argv[1])
