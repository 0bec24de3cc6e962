"""A minimal real node for bus tests: subscribes to every topic the runner
role publishes, counts what it accepts, answers the standard services."""

from __future__ import annotations

import sys
from pathlib import Path

from bus.endpoints import Endpoints
from bus.node import Node
from bus.topics import TOPICS


def main(run_dir: str) -> None:
    node = Node("robot", "listener", Endpoints.for_run(Path(run_dir)), heartbeat_period_s=0.2)
    sub = node.subscribe("runner", list(TOPICS))
    node.install_signal_handlers()
    while node.running:
        if node.spin(50):
            node.counters["received"] += len(sub.drain())
    node.close()


if __name__ == "__main__":
    main(sys.argv[1])
