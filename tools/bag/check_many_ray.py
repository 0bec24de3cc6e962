"""The Ray side of ``hil bag check-policy --executor ray``: one task per bag.

A bag is read by the task from the path it has here; connected to a remote
cluster (--address) the driver also ships the bag's bytes, so the nodes need
not share this machine's disk. Ctrl-C cancels every task (by force: a check
is pure computation, nothing to stop cleanly) and shuts the session down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import ray
from ray.exceptions import RayError

from scenarios.ray_session import RaySettings, cpu_slots, ray_session
from tools.bag.check_many import BagOutcome, check_one


def check_on_ray(bags: list[Path], source: str, atol: float, dt: float | None, settings: RaySettings,
                 jobs: int | None, on_done: Callable[[BagOutcome], None]) -> list[BagOutcome]:
    """Every bag as a task, at most as many at once as the cluster has CPUs (or ``jobs``)."""
    outcomes: list[BagOutcome] = []
    with ray_session(settings):
        task = ray.remote(check_one).options(num_cpus=1, max_retries=0)
        limit = min(cpu_slots(1.0), jobs) if jobs else cpu_slots(1.0)
        waiting = list(bags)
        running: dict[ray.ObjectRef, Path] = {}
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    bag = waiting.pop(0)
                    data = _bytes(bag) if settings.address else None
                    running[task.remote(str(bag), source, atol, dt, data)] = bag
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
                for ref in ready:
                    bag = running.pop(ref)
                    try:
                        outcome = BagOutcome(**ray.get(ref))
                    except RayError as exc:
                        outcome = BagOutcome(str(bag), error=f"the Ray task ended without a result "
                                             f"({type(exc).__name__}): {str(exc).strip().splitlines()[0]}")
                    outcomes.append(outcome)
                    on_done(outcome)
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
            deadline = time.monotonic() + 5.0
            while running and time.monotonic() < deadline:  # let the cancellations land before shutdown
                done, _ = ray.wait(list(running), num_returns=len(running), timeout=0.5)
                for ref in done:
                    running.pop(ref)
    return outcomes


def _bytes(bag: Path) -> bytes | None:
    try:
        return bag.read_bytes()
    except OSError:
        return None  # the task says it cannot read the bag
