"""``hil cluster``: put a machine with an arm into a Ray cluster, and see which arms the cluster has.

A bench joins with its arms as custom resources named after their serial
ports (scenarios/bench_resources.py), so ``hil run ... --target hw
--executor ray`` runs each hw cell on the machine the arm is plugged into,
one at a time per arm.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

import click

from scenarios.bench_resources import ray_start_argv
from scenarios.executors import ExecutorError, load_ray


@click.group()
def cluster() -> None:
    """Ray cluster helpers for sweeps over several machines and benches (needs roarm-hil[ray]).

    \b
    Example:
      ray start --head --port 6379 --num-cpus 8          # on the head
      hil cluster join --address head:6379 --arm /dev/ttyUSB0   # on each bench
      hil cluster benches --address head:6379
    """


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise click.ClickException("the 'ray' command is not installed: pip install 'roarm-hil[ray]'")
    return found


def _check_port(port: str) -> str | None:
    """Why ``port`` is not a serial device here, or None when it looks like one."""
    try:
        mode = os.stat(port).st_mode
    except OSError as exc:
        return f"{port}: {exc.strerror or exc}"
    if not stat.S_ISCHR(mode):
        return f"{port}: not a character device (a serial port is one)"
    if not os.access(port, os.R_OK | os.W_OK):
        return f"{port}: no read/write permission (add this user to the dialout group)"
    return None


@cluster.command()
@click.option("--address", required=True, metavar="HOST:PORT", help="The Ray head to join (ray start --head ...).")
@click.option("--arm", "arms", multiple=True, metavar="PORT",
              help="Serial port of an arm plugged into this machine (repeat for several).")
@click.option("--num-cpus", type=click.IntRange(min=0), default=0, show_default=True,
              help="CPUs this machine lends to simulated cells; 0 keeps them off the bench, so its "
                   "real-time runs have the machine to themselves.")
@click.option("--dry-run", is_flag=True, help="Print the ray start command instead of running it.")
def join(address: str, arms: tuple[str, ...], num_cpus: int, dry_run: bool) -> None:
    """Join the Ray cluster at ADDRESS, advertising the arms on --arm ports.

    Runs: ray start --address ADDRESS --resources '{"roarm_m3": N, "roarm_m3:PORT": 1, ...}'
    --num-cpus 0. Each port must be a serial device this user can open (checked first).

    \b
    Examples:
      hil cluster join --address 10.0.0.5:6379 --arm /dev/ttyUSB0
      hil cluster join --address 10.0.0.5:6379 --arm /dev/ttyUSB0 --arm /dev/ttyUSB1 --num-cpus 2
    """
    if not dry_run:
        problems = [p for p in (_check_port(port) for port in arms) if p]
        if problems:
            raise click.ClickException("cannot advertise these arms:\n  " + "\n  ".join(problems))
    argv = ray_start_argv(address, list(arms), num_cpus)
    argv[0] = _ray_executable() if not dry_run else "ray"
    click.echo(shlex.join(argv), err=not dry_run)
    if dry_run:
        return
    os.execv(argv[0], argv)


@cluster.command()
@click.option("--address", required=True, metavar="HOST:PORT", help="The Ray head of the cluster.")
def benches(address: str) -> None:
    """List the live nodes of the cluster with their CPUs and advertised arms.

    \b
    Example:
      hil cluster benches --address 10.0.0.5:6379
    """
    try:
        ray = load_ray("ray")
        session = load_ray("scenarios.ray_session")
        resources = load_ray("scenarios.bench_resources")
        with session.ray_session(session.RaySettings(address=address)):
            nodes = [n for n in ray.nodes() if n.get("Alive")]
    except ExecutorError as exc:
        raise click.ClickException(str(exc)) from None
    for node in nodes:
        arms = resources.arms_in(node.get("Resources", {}))
        click.echo(f"{node.get('NodeManagerAddress', '?')} (node {node.get('NodeID', '?')[:12]}): "
                   f"{node.get('Resources', {}).get('CPU', 0):g} CPUs, arms: {', '.join(sorted(arms)) or 'none'}")
