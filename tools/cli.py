"""``hil``: the roarm-hil command line (click, nested groups)."""

from __future__ import annotations

import click

from bus.security import SecurityError
from tools.bag_cli import bag
from tools.bench_cli import bench
from tools.bus_cli import bus
from tools.cluster_cli import cluster
from tools.keys_cli import keys
from tools.node_cli import node
from hw_node.cli import emulate
from tools.run_cli import run
from tools.policy_cli import policy


class _Hil(click.Group):
    """Any command that would bind where strangers can reach it without keys
    ends with the one-line explanation of what to do, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SecurityError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Hil, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="roarm-hil", prog_name="hil")
def main() -> None:
    """Run control policies against a simulated or real Waveshare RoArm-M3.

    \b
    Examples:
      hil bus ping robot          is the robot node up?
      hil bus echo robot/joint_state --json
    """


main.add_command(bus)
main.add_command(node)
main.add_command(emulate)
main.add_command(bench)
main.add_command(run)
main.add_command(keys)
main.add_command(bag)
main.add_command(policy)
main.add_command(cluster)
