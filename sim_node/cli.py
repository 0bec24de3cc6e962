"""``hil node sim`` (and ``python -m sim_node``): start the simulated arm.

MuJoCo or Isaac Sim is imported by the chosen backend when the node makes it,
not when this module is imported.
"""

from __future__ import annotations

from pathlib import Path

import click

from bus.affinity import pin
from bus.cli_options import HilCommand, cpus_option, endpoint_options, load_endpoints, phases_option, spin_option
from roarm.camera import CameraSpec, CameraSpecError, check_unique, parse_compact
from sim_node.node import SimConfig, SimNode

BACKEND_NAMES = ("mujoco", "mock", "isaac")


def camera_specs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[CameraSpec, ...]:
    """``--camera NAME:key=value,...`` (roarm.camera) -> specs; a bad one is a usage error naming its field."""
    try:
        specs = tuple(parse_compact(value) for value in values)
        check_unique(specs)
    except CameraSpecError as exc:
        raise click.BadParameter(str(exc)) from None
    return specs


@click.command("sim", cls=HilCommand)
@click.option("--backend", type=click.Choice(BACKEND_NAMES), default="mujoco", show_default=True,
              help="Simulator: mujoco (physics), mock (kinematic, numpy only; CI), isaac (inside Isaac Sim).")
@click.option("--mode", type=click.Choice(["lockstep", "realtime"]), default="lockstep", show_default=True,
              help="lockstep: wait for the command answering each state; realtime: paced to the wall clock.")
@click.option("--dt", type=click.FloatRange(min=0.001, max=1.0), default=0.01, show_default=True,
              help="Control period in seconds (MuJoCo: a multiple of its 2 ms physics step).")
@click.option("--physics-dt", type=click.FloatRange(min=1e-5, max=0.01), default=None,
              help="Physics step in seconds (mujoco, isaac) [default: 0.002]: a control period that is not a "
                   "whole number of 2 ms steps needs one that divides it, e.g. --dt 0.0333333 --physics-dt 0.0016667 "
                   "for Isaac Lab's 1/60 s x decimation 2.")
@click.option("--deadline-ms", type=click.FloatRange(min=0.1), default=100.0, show_default=True,
              help="Lockstep: how long to wait for the command answering a state before holding.")
@click.option("--autostart", is_flag=True, help="Lockstep: start at once (home, --seed) instead of waiting for reset.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the start-up reset (realtime or --autostart).")
@click.option("--rt-priority", type=click.IntRange(min=0, max=99), default=0, show_default=True,
              help="Realtime mode: run the loop at this SCHED_FIFO priority (needs CAP_SYS_NICE; 0 = off).")
@click.option("--clock-every", type=click.IntRange(min=0), default=None, metavar="N",
              help="Publish sim/clock on every N-th control step (0 = never) [default: 10 in lockstep, 1 in "
                   "realtime]; JointState carries sim_time and seq on every step.")
@click.option("--name", default="sim", show_default=True, help="Node name in heartbeats, events and info.")
@click.option("--camera", "cameras", multiple=True, callback=camera_specs, metavar="NAME:KEY=VALUE,...",
              help="Render a camera (repeatable): keys mount (world or a link, e.g. link5), pos, lookat, quat "
                   "(vectors as 0.6/0/0.4), w, h, fov (vertical, degrees), every (control periods), "
                   "enc (raw, jpeg, png). E.g. wrist:mount=link5,w=320,h=240,fov=60,every=5,enc=jpeg")
@spin_option
@phases_option
@cpus_option
@endpoint_options
def sim(backend: str, mode: str, dt: float, physics_dt: float | None, deadline_ms: float, autostart: bool, seed: int,
        rt_priority: int, clock_every: int | None, name: str, cameras: tuple[CameraSpec, ...], spin_us: int,
        phases: bool, cpus: frozenset[int] | None, run_dir: Path | None, endpoints_file: Path | None) -> None:
    """Run the simulated RoArm-M3 as the run's robot node until Ctrl-C or shutdown.

    \b
    Examples:
      hil node sim --backend mock --mode lockstep --run-dir /tmp/run1
      hil node sim --backend mujoco --mode realtime --dt 0.01 --rt-priority 10
      hil node sim --camera wrist:mount=link5,w=320,h=240,fov=60,every=5,enc=jpeg --camera front
      ./python.sh -m sim_node --backend isaac --run-dir /tmp/run1   (inside Isaac Sim)
    """
    pin(cpus)  # before the simulator starts its threads and ZMQ its I/O thread
    endpoints = load_endpoints(run_dir, endpoints_file)
    if physics_dt is not None and backend == "mock":
        raise click.UsageError("--physics-dt applies to the physics backends (mujoco, isaac), not mock")
    try:
        config = SimConfig(backend=backend, mode=mode, dt=dt, deadline_s=deadline_ms / 1000, autostart=autostart,
                           seed=seed, rt_priority=rt_priority, name=name, cameras=cameras,
                           backend_options={} if physics_dt is None else {"physics_dt": physics_dt},
                           clock_every=clock_every, spin_us=spin_us, phases=phases)
        node = SimNode(config, endpoints)
    except ValueError as exc:  # a configuration the backend cannot run (dt not whole physics steps, ...)
        raise click.UsageError(str(exc)) from None
    node.node.install_signal_handlers()
    node.run()
