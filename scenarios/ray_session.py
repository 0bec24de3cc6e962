"""Connecting to Ray (or starting a small local one) for the length of a sweep, and leaving nothing behind.

Without an address a private local Ray is started (``address="local"``: an
unrelated cluster on this machine or ``RAY_ADDRESS`` is never picked up by
accident) with a few CPUs, no dashboard and no worker logs on our terminal;
``ray.shutdown()`` at the end stops it. With ``--address`` we only connect,
and shutting down only disconnects.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import ray

from scenarios.bench_resources import arms_in
from scenarios.executors import ExecutorError

# The smallest object store Ray accepts is 75 MiB; cells return a few kB each.
LOCAL_OBJECT_STORE_BYTES = 100 * 1024 * 1024
# ray.init retries an unreachable head for minutes: a plain TCP connect says so at once.
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None  # HOST:PORT of a running cluster's head; None: a local Ray
    num_cpus: int | None = None  # CPUs of the local Ray (default: this machine's cores)


@contextmanager
def ray_session(settings: RaySettings) -> Iterator[None]:
    """``ray.init`` for the block, ``ray.shutdown`` after it whatever happens."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from CI machines
    common = {"log_to_driver": False, "logging_level": logging.WARNING, "ignore_reinit_error": False}
    if settings.address:
        check_reachable(settings.address)
    try:
        if settings.address:
            ray.init(address=settings.address, **common)
        else:
            ray.init(address="local", num_cpus=settings.num_cpus or os.cpu_count() or 1, include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"the Ray cluster at {settings.address}" if settings.address else "a local Ray"
        raise ExecutorError(f"cannot start or reach {where}: {str(exc).splitlines()[0] if str(exc) else exc!r}") \
            from None
    try:
        yield
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ExecutorError when nothing accepts a connection at HOST:PORT (Ray's GCS port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        raise ExecutorError(f"--address {address!r}: expected HOST:PORT of a Ray head, e.g. 10.0.0.5:6379")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ExecutorError(f"cannot reach the Ray head at {address}: {exc.strerror or exc} (is `ray start --head "
                            f"--port {port}` running there, and the port open to this machine?)") from None


def cpu_slots(cpus_per_task: float) -> int:
    """How many tasks of ``cpus_per_task`` CPUs the cluster can run at once (at least 1)."""
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    return max(1, int(cpus // cpus_per_task)) if cpus_per_task > 0 else max(1, int(cpus))


def advertised_arms() -> dict[str, int]:
    """Port -> arms on it, over every live node of the cluster."""
    return arms_in({k: float(v) for k, v in ray.cluster_resources().items()})
