"""``hil node``: start one node of a run as its own process.

Each node kind defines its command next to its code (sim_node/cli.py, ...)
and is registered here. Heavy packages (MuJoCo, Isaac Sim, onnxruntime) are
imported by the backend or model that needs them, when it is made, so
``hil --help`` stays fast.
"""

from __future__ import annotations

import click

from hw_node.cli import hw
from policy_node.cli import policy
from sim_node.cli import sim


@click.group()
def node() -> None:
    """Start a node (robot: sim or hw; policy) as its own process.

    \b
    Example:
      hil node sim --backend mock --mode lockstep --run-dir /tmp/run1
    """


node.add_command(policy)
node.add_command(sim)
node.add_command(hw)
