"""``hil node``: start one node of a run as its own process.

Each node kind defines its command next to its code (sim_node/cli.py, ...)
and is registered here by name, imported only when it is started: ``hil
node sim`` does not load the policy node or the serial link. Heavy packages
(MuJoCo, Isaac Sim, onnxruntime) are imported by the backend or model that
needs them, when it is made.
"""

from __future__ import annotations

import click

from tools.lazy_group import LazyGroup

NODES = {
    "policy": "policy_node.cli:policy",
    "sim": "sim_node.cli:sim",
    "hw": "hw_node.cli:hw",
    "camera": "camera_node.cli:camera",
}


@click.group(cls=LazyGroup, lazy=NODES)
def node() -> None:
    """Start a node (robot: sim or hw; policy; camera: a real camera) as its own process.

    \b
    Example:
      hil node sim --backend mock --mode lockstep --run-dir /tmp/run1
    """
