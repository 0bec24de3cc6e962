"""``hil``: the roarm-hil command line (click, nested groups).

Each group lives in its own module and is imported when it is used (see
tools/lazy_group.py); errors end every command the same way (bus/errors.py:
one line on stderr, the error's exit status).
"""

from __future__ import annotations

import click

from tools.lazy_group import LazyGroup

COMMANDS = {
    "bus": "tools.bus_cli:bus",
    "node": "tools.node_cli:node",
    "emulate": "hw_node.cli:emulate",
    "bench": "tools.bench_cli:bench",
    "run": "tools.run_cli:run",
    "keys": "tools.keys_cli:keys",
    "bag": "tools.bag_cli:bag",
    "policy": "tools.policy_cli:policy",
    "goal": "tools.goal_cli:goal",
    "report": "tools.report_cli:report",
    "view": "tools.view_cli:view",
    "cluster": "tools.cluster_cli:cluster",
}


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="roarm-hil", prog_name="hil")
def main() -> None:
    """Run control policies against a simulated or real Waveshare RoArm-M3.

    \b
    Examples:
      hil bus ping robot          is the robot node up?
      hil bus echo robot/joint_state --json
    """
