"""How a machine with an arm tells a Ray cluster about it: custom resources named after the port.

A bench node joins with ``{"roarm_m3": N, "roarm_m3:/dev/ttyUSB0": 1, ...}``:
one unit per arm, named by its serial port. A ``--target hw`` cell asks for
one unit of one port's resource, so Ray runs it on the machine the arm is
plugged into and never two cells on one arm at once; the task reads the
port back from the resource it was given. (Two benches may both call their
arm /dev/ttyUSB0: the resource then has two units, one per machine, and is
still never shared within a machine.)
"""

from __future__ import annotations

import json

ARM = "roarm_m3"
PREFIX = ARM + ":"


def arm_resource(port: str) -> str:
    """The resource name of the arm on ``port``."""
    return PREFIX + port


def port_of(resource: str) -> str | None:
    """The port in an arm resource name; None for anything else."""
    return resource[len(PREFIX):] if resource.startswith(PREFIX) and len(resource) > len(PREFIX) else None


def bench_resources(ports: list[str]) -> dict[str, float]:
    """What a bench node advertises for these ports."""
    resources: dict[str, float] = {ARM: float(len(ports))}
    for port in ports:
        resources[arm_resource(port)] = 1.0
    return resources


def ray_start_argv(address: str, ports: list[str], num_cpus: int | None = None) -> list[str]:
    """``ray start`` for a bench node: join the head at ``address`` advertising the arms on ``ports``."""
    argv = ["ray", "start", "--address", address, "--resources", json.dumps(bench_resources(ports))]
    if num_cpus is not None:
        argv += ["--num-cpus", str(num_cpus)]
    return argv


def arms_in(resources: dict[str, float]) -> dict[str, int]:
    """Port -> number of arms on it, from a cluster's (or a node's) resource totals."""
    arms = {}
    for name, amount in resources.items():
        port = port_of(name)
        if port is not None and amount >= 1:
            arms[port] = int(amount)
    return arms
