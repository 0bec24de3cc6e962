"""``hil node``: start one node of a run as its own process.

Each node kind defines its command next to its code (sim_node/cli.py, ...)
and is registered here. Heavy imports (MuJoCo, onnxruntime) happen inside the
commands so ``hil --help`` stays fast.
"""

from __future__ import annotations

import click


@click.group()
def node() -> None:
    """Start a node (robot: sim or hw; policy) as its own process.

    \b
    Example:
      hil node sim --backend mock --mode lockstep --run-dir /tmp/run1
    """


from policy_node.cli import policy as _policy  # noqa: E402 - registered after the group exists

node.add_command(_policy)

from sim_node.cli import sim as _sim  # noqa: E402 - registered after the group exists

node.add_command(_sim)

from hw_node.cli import hw as _hw  # noqa: E402 - registered after the group exists

node.add_command(_hw)
